// Media attached to a post: each gets an id; unknown kinds are dropped.
import { defineFunction } from 'baton/sdk';

const KINDS = new Set(['png', 'jpg', 'gif', 'mp4']);
export default defineFunction((req) => req.json<string[]>().filter((k) => KINDS.has(k)).map((kind, i) => ({ id: i + 1, kind })));
