import type { Command } from 'commander'

// PLACEHOLDER: `deputy resources …` is being written (issue 3); replaced before anything is claimed.
export function registerResources(_program: Command): void {}
