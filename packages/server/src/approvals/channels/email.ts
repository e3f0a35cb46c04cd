import type { Transporter } from 'nodemailer'
import type { ApprovalNotice, NotificationChannel } from '../notify.js'

// Email over SMTP (nodemailer): a short mail naming the agent and what it asks, with the link to
// the request's page. It carries no secret: no auth_req_id, no token, no one-click decision —
// the person decides on the page, signed in, where the decision binds to what is shown.

/** How the email channel reaches its SMTP server. */
export interface EmailChannelOptions {
  /** `smtp://…` or `smtps://…`, credentials in the URL if the server wants them. */
  url: string
  from: string
  /** Refuse to send over a connection that did not upgrade with STARTTLS (`smtp://` only). */
  requireTls: boolean
}

/** The text of the mail: plain words and the link, nothing a reader could use but the page. */
export function emailText(notice: ApprovalNotice): string {
  return [
    `${notice.clientName} asks for your approval (as ${notice.person.email}).`,
    '',
    notice.summary,
    '',
    'Open the request to approve or deny it:',
    notice.link,
    '',
    `It expires at ${new Date(notice.request.expiresAt).toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
    'If you did not expect it, deny it.',
    '',
  ].join('\n')
}

/**
 * The `email` channel: to the person's address as their account has it when the notice is sent
 * (a changed address is followed; settings hold nothing).
 */
export function emailChannel(options: EmailChannelOptions): NotificationChannel {
  const secure = options.url.startsWith('smtps:')
  // nodemailer is loaded with the first mail: a `deputy` command that sends none need not load it.
  let transport: Promise<Transporter> | undefined
  const connect = async () =>
    (await import('nodemailer')).default.createTransport({
      url: options.url,
      requireTLS: !secure && options.requireTls,
    })
  return {
    name: 'email',
    target: (_settings, person) => person.email,
    async send(notice) {
      transport ??= connect()
      await (await transport).sendMail({
        from: options.from,
        to: notice.person.email,
        subject: `${notice.clientName} asks for your approval`,
        text: emailText(notice),
      })
    },
  }
}
