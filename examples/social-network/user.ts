// The author: 404 for someone the network does not know.
import { defineFunction } from 'baton/sdk';
import { USERS } from './users.ts';

export default defineFunction((req, ctx) => {
  const name = req.text();
  const user = USERS[name];
  if (!user) return ctx.status(404).json({ error: `no user '${name}'` });
  return { id: user.id, name };
});
