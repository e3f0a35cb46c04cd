import type { Command } from 'commander'

// PLACEHOLDER: `deputy audit …` is being written (issue 2 §8); replaced before the issue closes.
export function registerAudit(_program: Command): void {}
