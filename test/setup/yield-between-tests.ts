import { afterEach } from 'vitest';

// A vitest worker answers its runner over an RPC that times out after 60 s. Tests that run CLI
// children with spawnSync, or long synchronous work, never hand the event loop back in between,
// so a file's worth of them can add up past that on a slow CI machine and fail a green run
// ("Timeout calling onTaskUpdate"). One turn of the loop after each test reads the runner's replies.
afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
