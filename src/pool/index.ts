export * from './pool.ts';
export * from './layout.ts';
export * from './set.ts';
