// Exit codes of actor processes that their supervisor (or a service manager) acts on. Kept apart
// from the actors themselves so the supervisor loads none of their code.
export const EXIT = { OK: 0, RECYCLE: 75, CONFIG: 78 } as const;

/**
 * What an actor tells its supervisor (over IPC, before it exits 0) when it is not needed: its
 * driver version does not implement its mode. Any other exit the supervisor did not ask for, a
 * clean one too (someone sent the actor SIGTERM), is restarted: a gateway missing an actor is down.
 */
export const NOT_NEEDED = 'not-needed';
