// Linux errno values: driver methods return 0 or one of these negated, as Syndicate drivers do.
export const Errno = {
  EPERM: 1, ENOENT: 2, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13, EEXIST: 17,
  ENOTDIR: 20, EISDIR: 21, EINVAL: 22, EFBIG: 27, ENOSPC: 28, ENOSYS: 38, ENOTEMPTY: 39,
  ENODATA: 61, EBADMSG: 74, ETIMEDOUT: 110, ESTALE: 116,
} as const;

const names = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));

/** "ENOENT" for -2 or 2; "E<n>" for numbers this table does not know. */
export function errnoName(rc: number): string {
  return names.get(Math.abs(rc)) ?? `E${Math.abs(rc)}`;
}

/** Maps a Node system error (err.code like 'ENOENT') to a negative errno; -EIO when unknown. */
export function negativeErrnoOf(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code in Errno) return -Errno[code as keyof typeof Errno];
  return -Errno.EIO;
}
