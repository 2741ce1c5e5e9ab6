#!/usr/bin/env node
import { main } from './cli.js';

// The original's httpfuse-qemu: the OS menu, booting the choice under plain emulation (TCG forced).
process.exitCode = await main(['menu', ...process.argv.slice(2), '--accel', 'tcg'], 'httpfuse-qemu');
