import type { Command } from 'commander'

// PLACEHOLDER: `deputy users …` is being written (issue 2 §8); replaced before the issue closes.
export function registerUsers(_program: Command): void {}
