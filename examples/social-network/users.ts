// The example's fixed social graph (a real deployment would call a user store).
export const USERS: Record<string, { id: number; followers: string[] }> = {
  ada: { id: 1, followers: ['grace', 'alan', 'barbara'] },
  grace: { id: 2, followers: ['ada'] },
  alan: { id: 3, followers: ['ada', 'grace'] },
  barbara: { id: 4, followers: [] },
};
