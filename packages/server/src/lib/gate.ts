/**
 * A first-come, first-served asynchronous lock: `acquire` resolves with the function that
 * releases it. Waiting costs nothing but a queued promise, so the event loop keeps running.
 */
export interface Gate {
  acquire(): Promise<() => void>
}

export function createGate(): Gate {
  let held = false
  const waiting: (() => void)[] = []
  function release(): void {
    const next = waiting.shift()
    if (next) next()
    else held = false
  }
  return {
    acquire() {
      if (!held) {
        held = true
        return Promise.resolve(once(release))
      }
      return new Promise((resolve) => waiting.push(() => resolve(once(release))))
    },
  }
}

function once(fn: () => void): () => void {
  let done = false
  return () => {
    if (done) return
    done = true
    fn()
  }
}
