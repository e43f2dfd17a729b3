#!/usr/bin/env node
// The sources are the runtime (no build step): register tsx's loader, then run the CLI.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
