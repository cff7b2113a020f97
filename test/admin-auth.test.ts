// The admin credential guard: bearer token, basic auth, and the two "unset" behaviours.
import test from 'ava';
import { authorizes, credentialConfigured, type AdminCredential } from '../http/admin-auth.js';
import { parseConfig, ConfigError } from '../proto/config/config.js';
import { configFolder } from './support/config-folder.js';

const cred = (over: Partial<AdminCredential>): AdminCredential => ({ token: null, user: null, password: null, allow_writes: false, ...over });
const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

test('a bearer token authorizes only itself', (t) => {
  const c = cred({ token: 's3cret' });
  t.true(authorizes(c, 'Bearer s3cret'));
  t.true(authorizes(c, 'bearer  s3cret'));
  t.false(authorizes(c, 'Bearer s3cre'));
  t.false(authorizes(c, 'Bearer s3cret2'));
  t.false(authorizes(c, basic('admin:s3cret')), 'basic is not configured');
  t.false(authorizes(c, undefined));
  t.false(authorizes(c, 's3cret'));
});

test('basic auth needs both user and password', (t) => {
  const c = cred({ user: 'ops', password: 'pa:ss' });
  t.true(authorizes(c, basic('ops:pa:ss')), 'a password may contain ":"');
  t.false(authorizes(c, basic('ops:pa')));
  t.false(authorizes(c, basic('opz:pa:ss')));
  t.false(authorizes(c, basic('ops')));
  t.false(authorizes(c, 'Bearer pa:ss'));
});

test('configured only with a token or a full user/password pair', (t) => {
  t.false(credentialConfigured(cred({})));
  t.true(credentialConfigured(cred({ token: 'x' })));
  t.true(credentialConfigured(cred({ user: 'u', password: 'p' })));
});

test('config: admin section, pairs and environment overrides', (t) => {
  const { dir, base } = configFolder(t);
  t.false(credentialConfigured(parseConfig(base, dir).admin), 'off by default');
  t.throws(() => parseConfig({ ...base, admin: { user: 'u' } }, dir), { instanceOf: ConfigError, message: /go together/ });
  t.throws(() => parseConfig({ ...base, admin: { token: 'x', allow_writes: 'yes' } }, dir), { instanceOf: ConfigError, message: /allow_writes/ });
  const fromEnv = parseConfig({ ...base, admin: { token: 'file' } }, dir, { SGW_ADMIN_TOKEN: 'env' }).admin;
  t.is(fromEnv.token, 'env');
  t.false(fromEnv.allow_writes);
  t.true(parseConfig({ ...base, admin: { user: 'u', password: 'p', allow_writes: true } }, dir).admin.allow_writes);
});
