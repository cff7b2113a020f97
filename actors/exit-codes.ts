// Exit codes of actor processes that their supervisor (or a service manager) acts on. Kept apart
// from the actors themselves so the supervisor loads none of their code.
export const EXIT = { OK: 0, RECYCLE: 75, CONFIG: 78 } as const;
