// Stores posts (in this instance's memory: the example's stand-in for a database).
import { defineFunction } from 'baton/sdk';

const posts = new Map<string, unknown>();
export default defineFunction((req) => {
  const post = req.json<{ id: string }>();
  posts.set(post.id, post);
  return { stored: post.id, posts: posts.size };
});
