// Request classes, highest first. A request's class is its route's (`class:` in the chain
// file), or the one its `x-baton-class` header names when that is at or below the route's: a
// client may lower its own requests' priority, never raise it.

export const CLASSES = ['critical', 'normal', 'best-effort'] as const;
export type ClassName = (typeof CLASSES)[number];

/** Rank of each class: 0 is served first. */
export const rank = (c: ClassName): number => CLASSES.indexOf(c);
export const LOWEST = CLASSES.length - 1;

/** The header a client lowers its request's class with. */
export const CLASS_HEADER = 'x-baton-class';

/** The rank a request runs at: its route's, or the header's when that is lower (an unknown
 *  or higher one is ignored). */
export function classOf(routeRank: number, header: string | string[] | undefined): number {
  if (typeof header !== 'string') return routeRank;
  const asked = CLASSES.indexOf(header.trim().toLowerCase() as ClassName);
  return asked > routeRank ? asked : routeRank;
}
