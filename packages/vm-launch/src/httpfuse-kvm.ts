#!/usr/bin/env node
import { main } from './cli.js';

// The original's httpfuse-kvm: the OS menu, booting the choice with KVM when it really works (else TCG).
process.exitCode = await main(['menu', ...process.argv.slice(2)], 'httpfuse-kvm');
