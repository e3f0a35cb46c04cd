import type { Command } from 'commander'

// PLACEHOLDER: `deputy roles …` is being written (issue 2 §8); replaced before the issue closes.
export function registerRoles(_program: Command): void {}
