import type { Command } from 'commander'

// PLACEHOLDER: `deputy keys …` is being written (issue 2 §8); replaced before the issue closes.
export function registerKeys(_program: Command): void {}
