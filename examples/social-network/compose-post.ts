// Composes a post: the independent parts in parallel, then storage and timelines in parallel.
import { defineFunction } from 'baton/sdk';

interface Draft {
  user: string;
  text: string;
  media?: string[];
}

export default defineFunction(async (req, ctx) => {
  const draft = req.json<Draft>(); // read before anything is written
  const [id, user, media, text] = await Promise.all([
    ctx.call('unique-id'),
    ctx.call('user', draft.user),
    ctx.call('media', draft.media ?? []),
    ctx.call('text', draft.text),
  ]);
  if (user.status !== 200) return ctx.status(user.status).json(user.json());
  const post = { id: id.json<{ id: string }>().id, author: user.json(), media: media.json(), ...text.json<object>() };
  const [stored, timeline] = await Promise.all([ctx.call('post-storage', post), ctx.call('home-timeline', post)]);
  return ctx.status(201).json({ post, stored: stored.json(), timeline: timeline.json() });
});
