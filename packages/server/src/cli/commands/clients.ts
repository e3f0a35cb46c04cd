import type { Command } from 'commander'

// PLACEHOLDER: `deputy clients …` is being written (issue 3); replaced before anything is claimed.
export function registerClients(_program: Command): void {}
