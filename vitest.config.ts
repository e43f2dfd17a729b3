import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Files share one kernel and two CPUs: run them one at a time so each owns its sockmap
    // and worker processes, and nothing leaks between them.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The suite runs twice: on the kernel's data plane, then every test that starts a gateway
    // again on the user-space broker (the unit tests touch neither). `--project sockmap` runs one.
    projects: [
      { extends: true, test: { name: 'sockmap', include: ['test/**/*.test.ts'] } },
      {
        extends: true,
        test: { name: 'broker', include: ['test/**/*.test.ts'], exclude: ['test/unit/**'], env: { BATON_DATAPLANE: 'broker' } },
      },
    ],
  },
});
