// Mentions resolved to user ids; unknown names are left out.
import { defineFunction } from 'baton/sdk';
import { USERS } from './users.ts';

export default defineFunction((req) => req.json<string[]>().filter((n) => USERS[n]).map((name) => ({ name, id: USERS[name]!.id })));
