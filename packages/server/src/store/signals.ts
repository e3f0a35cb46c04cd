import { EventEmitter } from 'node:events'
import pg from 'pg'

/**
 * Small messages between the processes sharing one database: "approval X was decided", so a
 * replica that did not take the decision wakes what waits for it (a poll, the inbox's live page).
 * PostgreSQL: LISTEN/NOTIFY on one dedicated connection, which reconnects after a failure.
 * SQLite: within this process only (several processes on one SQLite file see each other's
 * changes on their next read, not at once).
 */
export interface Signals {
  /** Sends `payload` (at most 7,000 bytes) to every listener of `channel`, here and on other replicas. */
  publish(channel: string, payload: string): Promise<void>
  /** Calls `listener` with every payload sent to `channel`; returns how to stop. */
  subscribe(channel: string, listener: (payload: string) => void): () => void
  /**
   * Resolves once payloads sent to `channel` from now on, from any replica, reach this process's
   * subscribers (PostgreSQL: its LISTEN is in place), so a read after it cannot miss a change.
   */
  ready(channel: string): Promise<void>
  /**
   * Calls `listener` whenever payloads may have been missed (PostgreSQL: the listening connection
   * failed, and again once it listens again): whoever relies on hearing every change re-reads.
   */
  onMissed(listener: () => void): () => void
  close(): Promise<void>
}

/** Channel names PostgreSQL takes without quoting; ours are fixed words. */
const CHANNEL = /^[a-z_]{1,50}$/

/** Signals within this process (SQLite, tests). */
export function localSignals(): Signals {
  const emitter = new EventEmitter()
  emitter.setMaxListeners(0)
  return {
    async publish(channel, payload) {
      emitter.emit(channel, payload)
    },
    subscribe(channel, listener) {
      emitter.on(channel, listener)
      return () => emitter.off(channel, listener)
    },
    async ready() {},
    onMissed() {
      return () => {}
    },
    async close() {
      emitter.removeAllListeners()
    },
  }
}

/**
 * Signals through PostgreSQL. Publishing uses `pg_notify` on a pooled connection (`notify`);
 * listening holds one connection of its own. A payload published here is delivered to local
 * listeners by PostgreSQL too (the listening connection receives its own process's notifications),
 * so every listener hears every payload exactly once, wherever it was published.
 */
export function postgresSignals(
  connectionString: string,
  notify: (channel: string, payload: string) => Promise<void>,
  onError: (err: unknown) => void = () => {},
): Signals {
  const emitter = new EventEmitter()
  emitter.setMaxListeners(0)
  const listening = new Set<string>()
  /** Per channel, settles when its first LISTEN is in place. */
  const listened = new Map<string, Promise<void>>()
  let client: pg.Client | undefined
  let connecting: Promise<pg.Client> | undefined
  let closed = false
  let retry: NodeJS.Timeout | undefined
  let everConnected = false
  /** Who hears of a gap in listening (a failed connection, its replacement). */
  const missed = new Set<() => void>()
  const gap = () => {
    for (const listener of missed) listener()
  }

  function connect(): Promise<pg.Client> {
    connecting ??= (async () => {
      const next = new pg.Client({ connectionString })
      next.on('notification', (message) => {
        if (message.payload !== undefined) emitter.emit(message.channel, message.payload)
      })
      next.on('error', (err) => {
        onError(err)
        if (client === next) client = undefined
        connecting = undefined
        next.end().catch(() => {})
        if (!closed) gap()
        if (!closed) {
          retry = setTimeout(() => void connect().catch(onError), 1000)
          retry.unref()
        }
      })
      await next.connect()
      for (const channel of listening) await next.query(`LISTEN ${channel}`)
      const replaced = everConnected
      everConnected = true
      client = next
      // Payloads sent while no connection listened are lost: say so once this one listens.
      if (replaced) gap()
      return next
    })().catch((err) => {
      connecting = undefined
      throw err
    })
    return connecting
  }

  return {
    async publish(channel, payload) {
      if (!CHANNEL.test(channel)) throw new Error(`bad channel ${channel}`)
      await notify(channel, payload)
    },
    subscribe(channel, listener) {
      if (!CHANNEL.test(channel)) throw new Error(`bad channel ${channel}`)
      emitter.on(channel, listener)
      if (!listening.has(channel)) {
        listening.add(channel)
        listened.set(
          channel,
          connect()
            .then(async (c) => {
              if (client === c) await c.query(`LISTEN ${channel}`)
            })
            .catch(onError),
        )
      }
      return () => emitter.off(channel, listener)
    },
    async ready(channel) {
      await listened.get(channel)
    },
    onMissed(listener) {
      missed.add(listener)
      return () => missed.delete(listener)
    },
    async close() {
      closed = true
      missed.clear()
      clearTimeout(retry)
      emitter.removeAllListeners()
      const current = client ?? (connecting ? await connecting.catch(() => undefined) : undefined)
      client = undefined
      await current?.end().catch(() => {})
    },
  }
}
