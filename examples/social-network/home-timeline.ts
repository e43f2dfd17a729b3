// Delivers a post to its author's followers' home timelines.
import { defineFunction } from 'baton/sdk';
import { USERS } from './users.ts';

export default defineFunction((req) => {
  const post = req.json<{ id: string; author: { name: string } }>();
  const followers = USERS[post.author.name]?.followers ?? [];
  return { post: post.id, delivered: followers };
});
