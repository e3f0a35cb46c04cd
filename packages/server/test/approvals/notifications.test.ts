import { createHmac } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { emailChannel } from '../../src/approvals/channels/email.js'
import type { ApprovalNotice } from '../../src/approvals/notify.js'
import { hiddenField } from '../helpers/sign-in.js'
import { type InboxFixture, startInboxFixture } from './inbox-fixture.js'

// Notification channels (issue 11 §4) with real parts: a real SMTP server (smtp-server) receives
// the email nodemailer sends, a real HTTP receiver checks the webhook's HMAC-SHA256 signature and
// fails the first delivery so the retry shows; each person picks channels on their page.

interface Mail {
  from: string
  to: string[]
  raw: string
}

interface Delivery {
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** Quoted-printable soft breaks and escapes undone, so the test reads the mail's words. */
function decodeQuotedPrintable(text: string): string {
  return text
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
}

describe('approval notifications: email over SMTP and signed webhooks (issue 11 §4)', () => {
  let f: InboxFixture
  let smtp: SMTPServer
  let receiver: Server
  let hookUrl: string
  let smtpUrl: string
  const mails: Mail[] = []
  const deliveries: Delivery[] = []
  let failNext = 1

  beforeAll(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      onData(stream, session, callback) {
        let raw = ''
        stream.on('data', (chunk: Buffer) => {
          raw += chunk.toString('utf8')
        })
        stream.on('end', () => {
          mails.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw,
          })
          callback()
        })
      },
    })
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve))
    const smtpPort = (smtp.server.address() as AddressInfo).port
    smtpUrl = `smtp://127.0.0.1:${smtpPort}`

    receiver = createServer((req, res) => {
      let body = ''
      req.on('data', (chunk) => {
        body += chunk
      })
      req.on('end', () => {
        deliveries.push({ headers: req.headers, body })
        if (failNext > 0) {
          failNext--
          res.writeHead(503).end()
        } else res.writeHead(204).end()
      })
    })
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
    hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/deputy-hook`

    f = await startInboxFixture({
      config: { smtpUrl, smtpFrom: 'Deputy <deputy@example.com>' },
    })
  }, 60_000)

  afterAll(async () => {
    await f?.close()
    await new Promise<void>((resolve) => smtp?.close(() => resolve()))
    await new Promise((resolve) => receiver?.close(resolve))
  })

  it('links the inbox and the notifications page from the account page', async () => {
    const alice = await f.signedIn('alice')
    const account = await (await alice.get('/account')).text()
    expect(account).toContain('href="/approvals"')
    expect(account).toContain('href="/account/notifications"')
  })

  it('refuses a preference form without the session’s CSRF token, and a webhook that is not https', async () => {
    const alice = await f.signedIn('alice')
    const noToken = await alice.post('/account/notifications', { email: 'on' })
    expect(noToken.status).toBe(403)
    const page = await (await alice.get('/account/notifications')).text()
    const csrf = hiddenField(page, 'csrf_token')
    for (const url of ['http://example.com/hook', 'ftp://127.0.0.1/x', 'not a url']) {
      const res = await alice.post('/account/notifications', { csrf_token: csrf, webhook_url: url })
      expect(res.status).toBe(400)
    }
    const rows = await f.deputy.deps.db
      .selectFrom('notification_preferences')
      .selectAll()
      .where('user_id', '=', f.alice.id)
      .execute()
    expect(rows).toEqual([])
  })

  it('emails the person who chose email: the link to the request page, and no secret', async () => {
    const alice = await f.signedIn('alice')
    const page = await (await alice.get('/account/notifications')).text()
    expect(page).toContain('Email me at alice@example.com')
    const saved = await alice.post('/account/notifications', {
      csrf_token: hiddenField(page, 'csrf_token'),
      email: 'on',
    })
    expect(saved.status).toBe(200)
    expect(await saved.text()).toContain('Saved.')

    const { id, authReqId } = await f.ask({ binding_message: 'MAIL-7' })
    await f.deputy.deps.notifier.idle()
    expect(mails).toHaveLength(1)
    const [mail] = mails
    expect(mail?.to).toEqual(['alice@example.com'])
    expect(mail?.from).toBe('deputy@example.com')
    const text = decodeQuotedPrintable(mail?.raw ?? '')
    expect(text).toContain('Subject: Trading agent asks for your approval')
    expect(text).toContain(`${f.origin}/approvals/${id}`)
    expect(text).toContain('MAIL-7')
    expect(text).toContain('Pay 120.00 EUR to ACME Shirts')
    expect(text).not.toContain(authReqId)
    expect(text.toLowerCase()).not.toMatch(/auth_req_id|access_token|csrf/)

    const log = await f.deputy.deps.db
      .selectFrom('approval_notifications')
      .selectAll()
      .where('approval_id', '=', id)
      .execute()
    expect(log).toMatchObject([
      { channel: 'email', target: 'alice@example.com', status: 'delivered' },
    ])
    const audited = await f.deputy.deps.db
      .selectFrom('audit_events')
      .select('data')
      .where('type', '=', 'approval.notified')
      .where('target', '=', JSON.stringify({ type: 'approval', id }))
      .execute()
    expect(audited.map((a) => JSON.parse(a.data))).toMatchObject([{ channel: 'email' }])

    // Email off again: no more mail.
    const off = await (await alice.get('/account/notifications')).text()
    await alice.post('/account/notifications', { csrf_token: hiddenField(off, 'csrf_token') })
    await f.ask()
    await f.deputy.deps.notifier.idle()
    expect(mails).toHaveLength(1)
  })

  it('does not send email in the clear when TLS is required (production), and does when it is not', async () => {
    const { id } = await f.ask({ binding_message: 'TLS-1' })
    const request = await f.deputy.deps.approvals.byId(id)
    if (!request) throw new Error('no request')
    const notice: ApprovalNotice = {
      request,
      person: { id: f.alice.id, email: f.alice.email, name: 'Alice' },
      clientName: 'Trading agent',
      link: `${f.origin}/approvals/${id}`,
      summary: 'TLS-1',
    }
    const before = mails.length
    const strict = emailChannel({ url: smtpUrl, from: 'deputy@example.com', requireTls: true })
    await expect(strict.send(notice, {})).rejects.toThrow(/STARTTLS/)
    expect(mails).toHaveLength(before)
    const lenient = emailChannel({ url: smtpUrl, from: 'deputy@example.com', requireTls: false })
    await lenient.send(notice, {})
    expect(mails).toHaveLength(before + 1)
  })

  it('posts a signed webhook, retried with backoff after a failure, logged as delivered', async () => {
    const bob = await f.signedIn('bob')
    const page = await (await bob.get('/account/notifications')).text()
    const saved = await bob.post('/account/notifications', {
      csrf_token: hiddenField(page, 'csrf_token'),
      webhook_url: hookUrl,
    })
    const html = await saved.text()
    const secret = /<pre id="webhook-secret">([^<]+)<\/pre>/.exec(html)?.[1] as string
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/)
    // Shown once: the page afterwards has the URL, not the secret; the row holds it sealed.
    const again = await (await bob.get('/account/notifications')).text()
    expect(again).toContain(hookUrl)
    expect(again).not.toContain(secret)
    const row = await f.deputy.deps.db
      .selectFrom('notification_preferences')
      .select('settings')
      .where('user_id', '=', f.bob.id)
      .where('channel', '=', 'webhook')
      .executeTakeFirstOrThrow()
    expect(row.settings).not.toContain(secret)

    failNext = 1
    deliveries.length = 0
    const { id, authReqId } = await f.ask({ login_hint: f.bob.email, binding_message: 'HOOK-3' })
    await f.deputy.deps.notifier.idle()
    expect(deliveries).toHaveLength(2)
    for (const delivery of deliveries) {
      const timestamp = delivery.headers['deputy-webhook-timestamp'] as string
      expect(timestamp).toMatch(/^\d+$/)
      const expected = `v1=${createHmac('sha256', secret).update(`${timestamp}.${delivery.body}`).digest('hex')}`
      expect(delivery.headers['deputy-webhook-signature']).toBe(expected)
      expect(delivery.headers['deputy-webhook-event']).toBe('approval.requested')
      expect(delivery.headers['content-type']).toBe('application/json')
      // A signature by any other secret does not match.
      const forged = createHmac('sha256', 'whsec_other').update(`${timestamp}.${delivery.body}`)
      expect(delivery.headers['deputy-webhook-signature']).not.toBe(`v1=${forged.digest('hex')}`)
    }
    const body = JSON.parse(deliveries[1]?.body as string)
    expect(body).toMatchObject({
      type: 'approval.requested',
      approval: {
        id,
        link: `${f.origin}/approvals/${id}`,
        client: { name: 'Trading agent' },
        person: { email: 'bob@example.com' },
        binding_message: 'HOOK-3',
      },
    })
    expect(deliveries[1]?.body).not.toContain(authReqId)
    const log = await f.deputy.deps.db
      .selectFrom('approval_notifications')
      .selectAll()
      .where('approval_id', '=', id)
      .execute()
    expect(log).toMatchObject([
      { channel: 'webhook', target: new URL(hookUrl).host, status: 'delivered', attempts: 2 },
    ])
    const changes = await f.deputy.deps.db
      .selectFrom('audit_events')
      .select('data')
      .where('type', '=', 'notification-preference.changed')
      .execute()
    expect(changes.map((c) => JSON.parse(c.data))).toContainEqual({
      channel: 'webhook',
      on: true,
      target: new URL(hookUrl).host,
    })
  }, 30_000)
})
