// The answers list-objects and filter must give, computed in plain JavaScript from the generated
// tuples, so the benchmark measures correct answers and not fast wrong ones.

/** Index of the text tuples: subject → [object, relation] and the usersets named as subjects. */
export function indexTuples(texts) {
  const bySubject = new Map()
  for (const text of texts) {
    const at = text.indexOf('@')
    const left = text.slice(0, at)
    const subject = text.slice(at + 1)
    const hash = left.indexOf('#')
    const entry = { object: left.slice(0, hash), relation: left.slice(hash + 1) }
    const list = bySubject.get(subject)
    if (list) list.push(entry)
    else bySubject.set(subject, [entry])
  }
  return bySubject
}

/** Object ids of `type` on which `subject` (`user:u-0001`) has `relation`, through usersets. */
export function expectedObjects(bySubject, subject, relation, type) {
  const type0 = subject.slice(0, subject.indexOf(':'))
  const seen = new Set([subject, `${type0}:*`])
  const queue = [...seen]
  while (queue.length > 0) {
    const s = queue.shift()
    for (const { object, relation: r } of bySubject.get(s) ?? []) {
      const userset = `${object}#${r}`
      if (!seen.has(userset)) {
        seen.add(userset)
        queue.push(userset)
      }
    }
  }
  const ids = new Set()
  for (const s of seen)
    for (const { object, relation: r } of bySubject.get(s) ?? [])
      if (r === relation && object.startsWith(`${type}:`)) ids.add(object.slice(type.length + 1))
  return ids
}
