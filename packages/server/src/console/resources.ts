import type { Context, Hono } from 'hono'
import { BUILT_IN_TYPES, type DetailTypes } from '../approvals/detail-types.js'
import type { AppEnv } from '../http/env.js'
import type { SessionDeps } from '../identity/sessions.js'
import { DeputyError } from '../lib/errors.js'
import type { Form } from '../lib/form.js'
import { jsonTextProblem } from '../lib/json-input.js'
import { scopeSentence } from '../oauth/consent.js'
import type { Resource, Resources } from '../oauth/resources.js'
import {
  BLANK_SCOPE_ROWS,
  type DetailTypeView,
  type ResourceView,
  resourceHref,
  resourcePage,
  resourcesPage,
} from '../ui/console/resources.js'
import { consoleAction, consoleView, done, html } from './gate.js'

/** What the resource pages read and change: the same registries the admin API and CLI use. */
export interface ResourcesConsoleDeps extends SessionDeps {
  resources: Pick<Resources, 'list' | 'get' | 'put'>
  detailTypes: Pick<DetailTypes, 'list' | 'put' | 'remove'>
}

const NOTICES: Record<string, string> = {
  created: 'Resource added.',
  saved: 'Saved: new tokens and consent pages use these scopes and claims.',
  'type-saved': 'Detail type saved.',
  'type-removed': 'Detail type removed: requests with it are refused from now on.',
}

/** More scope rows than any form sends is refused rather than read without end. */
const MAX_SCOPE_ROWS = 100

function view(r: Resource): ResourceView {
  return {
    uri: r.uri,
    name: r.name,
    scopes: Object.keys(r.scopes)
      .sort()
      .map((scope) => ({ scope, sentence: scopeSentence(r, scope) })),
    claimsTemplate: r.claimsTemplate,
    isDefault: r.isDefault,
  }
}

/**
 * The scopes of a form's rows (`scope_<i>`, `sentence_<i>`): a row with neither is skipped (that
 * is how a scope is removed); a sentence without a name, or a name twice, is refused.
 */
export function scopesFromForm(form: Form): Record<string, string> {
  const scopes = new Map<string, string>()
  for (let i = 0; form.has(`scope_${i}`) || form.has(`sentence_${i}`); i++) {
    if (i >= MAX_SCOPE_ROWS + BLANK_SCOPE_ROWS)
      throw new DeputyError('ERR_INVALID_INPUT', `at most ${MAX_SCOPE_ROWS} scopes`)
    const scope = form.get(`scope_${i}`)?.trim() ?? ''
    const sentence = form.get(`sentence_${i}`)?.trim() ?? ''
    if (!scope && !sentence) continue
    if (!scope)
      throw new DeputyError('ERR_INVALID_INPUT', `scope ${i + 1} has a sentence but no name`)
    if (scopes.has(scope))
      throw new DeputyError('ERR_INVALID_INPUT', `scope "${scope}" is given twice`)
    scopes.set(scope, sentence)
  }
  // fromEntries defines own properties: a scope named __proto__ is a scope, not a prototype.
  return Object.fromEntries(scopes)
}

/** `email, favorite_song` → `['email', 'favorite_song']`: commas or spaces, each name once. */
export function claimsFromForm(form: Form): string[] {
  return [...new Set((form.get('claims') ?? '').split(/[\s,]+/).filter((name) => name !== ''))]
}

function schemaFromForm(form: Form): Record<string, unknown> {
  const text = form.get('schema') ?? ''
  const problem = jsonTextProblem(text)
  if (problem) throw new DeputyError('ERR_INVALID_INPUT', `the schema ${problem}`)
  let schema: unknown
  try {
    schema = JSON.parse(text)
  } catch {
    throw new DeputyError('ERR_INVALID_INPUT', 'the schema must be JSON, e.g. {"type": "object"}')
  }
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema))
    throw new DeputyError('ERR_INVALID_INPUT', 'the schema must be a JSON object')
  return schema as Record<string, unknown>
}

/** Resources (issue 15 §1): list, add, edit scopes and claims, and their detail types. */
export function registerResourcePages(app: Hono<AppEnv>, deps: ResourcesConsoleDeps): void {
  const { resources, detailTypes } = deps
  const notice = (c: Context<AppEnv>) => NOTICES[c.req.query('done') ?? '']
  const uriOf = (c: Context<AppEnv>) => c.req.param('uri') ?? ''
  const resourceOf = async (c: Context<AppEnv>): Promise<Resource> => {
    const resource = await resources.get(uriOf(c))
    if (!resource) throw new DeputyError('ERR_NOT_FOUND', 'no resource with that URI')
    return resource
  }
  const back = (c: Context<AppEnv>) => resourceHref(uriOf(c))

  app.get(
    '/admin/resources',
    consoleView(deps, async (c, admin) =>
      html(
        c,
        resourcesPage({
          resources: (await resources.list()).map(view),
          csrfToken: admin.session.csrfToken,
          notice: notice(c),
        }),
      ),
    ),
  )

  app.post(
    '/admin/resources',
    consoleAction(
      deps,
      () => '/admin/resources',
      async (c, admin, form) => {
        const uri = form.get('uri') ?? ''
        // Adding never replaces: an existing resource is changed on its own page.
        if (uri && (await resources.get(uri)))
          throw new DeputyError(
            'ERR_CONFLICT',
            `the resource ${uri} is registered already: change it on its page`,
          )
        const resource = await resources.put(
          {
            uri,
            name: form.get('name'),
            scopes: scopesFromForm(form),
            claimsTemplate: claimsFromForm(form),
            isDefault: form.get('default') === 'yes',
          },
          admin.actor,
        )
        return done(c, resourceHref(resource.uri, '?done=created'))
      },
    ),
  )

  app.get(
    '/admin/resources/:uri',
    consoleView(deps, async (c, admin) => {
      const resource = await resources.get(uriOf(c))
      if (!resource) return c.notFound()
      const types: DetailTypeView[] = (await detailTypes.list(resource.uri)).map((t) => ({
        type: t.type,
        description: t.description,
        template: t.template,
        schema: JSON.stringify(t.schema),
        highRisk: t.highRisk,
        builtIn: BUILT_IN_TYPES.some((b) => b.type === t.type && b.resource === t.resource),
      }))
      return html(
        c,
        resourcePage({
          resource: view(resource),
          detailTypes: types,
          csrfToken: admin.session.csrfToken,
          notice: notice(c),
        }),
      )
    }),
  )

  app.post(
    '/admin/resources/:uri',
    consoleAction(deps, back, async (c, admin, form) => {
      const existing = await resourceOf(c)
      const resource = await resources.put(
        {
          uri: existing.uri,
          name: form.get('name'),
          scopes: scopesFromForm(form),
          claimsTemplate: claimsFromForm(form),
          isDefault: form.get('default') === 'yes',
        },
        admin.actor,
      )
      return done(c, resourceHref(resource.uri, '?done=saved'))
    }),
  )

  app.post(
    '/admin/resources/:uri/detail-types',
    consoleAction(deps, back, async (c, admin, form) => {
      const resource = await resourceOf(c)
      const template = form.get('template') ?? ''
      await detailTypes.put(
        {
          resource: resource.uri,
          type: form.get('type') ?? '',
          schema: schemaFromForm(form),
          template,
          // As `deputy resources detail-types add`: the sentence describes the type by default.
          description: form.get('description') ?? template,
          highRisk: form.get('high_risk') === 'yes',
        },
        admin.actor,
      )
      return done(c, resourceHref(resource.uri, '?done=type-saved'))
    }),
  )

  app.post(
    '/admin/resources/:uri/detail-types/:type/remove',
    consoleAction(deps, back, async (c, admin) => {
      const resource = await resourceOf(c)
      await detailTypes.remove(resource.uri, c.req.param('type') ?? '', admin.actor)
      return done(c, resourceHref(resource.uri, '?done=type-removed'))
    }),
  )
}
