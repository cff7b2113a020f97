// Types for @koa/multer 4, which ships none: the multer instance whose methods return Koa middleware.
declare module '@koa/multer' {
  import type { Middleware } from 'koa';
  import type multer from 'multer';

  interface KoaMulterInstance {
    any(): Middleware;
    none(): Middleware;
    single(field: string): Middleware;
    array(field: string, maxCount?: number): Middleware;
    fields(fields: readonly multer.Field[]): Middleware;
  }

  function koaMulter(options?: multer.Options): KoaMulterInstance;
  namespace koaMulter {
    const diskStorage: typeof multer.diskStorage;
    const memoryStorage: typeof multer.memoryStorage;
  }
  export default koaMulter;
}
