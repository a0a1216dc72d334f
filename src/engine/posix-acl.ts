/**
 * POSIX ACL text as tar archives keep it (SCHILY.acl.access and .default,
 * GNU tar's, star's and libarchive's forms) turned into the attributes the
 * kernel stores (system.posix_acl_access, system.posix_acl_default): the
 * xattr form is a little-endian u32 version, then 8-byte entries (u16 tag,
 * u16 perm, u32 id).
 */

const VERSION = 2;

/** Tag values by the names and one-letter forms ACL text uses. */
const TAG_OF: Record<string, { plain: number; named?: number }> = {
  user: { plain: 0x01, named: 0x02 },
  u: { plain: 0x01, named: 0x02 },
  group: { plain: 0x04, named: 0x08 },
  g: { plain: 0x04, named: 0x08 },
  mask: { plain: 0x10 },
  m: { plain: 0x10 },
  other: { plain: 0x20 },
  o: { plain: 0x20 },
};
const UNDEFINED_ID = 0xffffffff;

/** Looks up the id of a user or group name; undefined when unknown. */
export type IdLookup = (kind: 'user' | 'group', name: string) => number | undefined;

/**
 * ACL text as tar archives keep it (SCHILY.acl.access / .default) back
 * into the kernel's xattr form. Entries are separated by commas (star,
 * libarchive) or newlines (GNU tar); "user:alice:r--:1000" carries the id
 * after the permissions (star, libarchive), which wins; a qualifier that
 * is a name without one goes through lookup. A missing mask is computed,
 * as setfacl does. Throws with the reason when the text is no valid ACL.
 */
export function aclFromText(text: string, lookup: IdLookup): Buffer {
  const entries: [number, number, number][] = [];
  for (const raw of text.split(/[,\n]/)) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [tagName = '', qualifier = '', perms = '', id, ...rest] = line.split(':');
    const tag = TAG_OF[tagName];
    if (!tag || rest.length || !/^[rwx-]{0,3}$/.test(perms)) throw new Error(`bad ACL entry "${line}"`);
    const perm = (perms.includes('r') ? 4 : 0) | (perms.includes('w') ? 2 : 0) | (perms.includes('x') ? 1 : 0);
    if (!qualifier) {
      entries.push([tag.plain, perm, UNDEFINED_ID]);
      continue;
    }
    if (tag.named === undefined) throw new Error(`bad ACL entry "${line}"`);
    const kind = tag.named === 0x02 ? 'user' : 'group';
    const num = id ?? qualifier;
    const resolved = /^[0-9]+$/.test(num) ? Number(num) : lookup(kind, qualifier);
    if (resolved === undefined || resolved >= UNDEFINED_ID) throw new Error(`unknown ${kind} "${qualifier}" in ACL entry "${line}"`);
    entries.push([tag.named, perm, resolved]);
  }
  const has = (t: number) => entries.some(([tag]) => tag === t);
  if (!has(0x01) || !has(0x04) || !has(0x20)) throw new Error('ACL without its user::, group:: or other:: entry');
  if ((has(0x02) || has(0x08)) && !has(0x10)) {
    const groupClass = entries.filter(([t]) => t === 0x02 || t === 0x04 || t === 0x08).reduce((m, [, p]) => m | p, 0);
    entries.push([0x10, groupClass, UNDEFINED_ID]);
  }
  // The kernel wants them in tag order, named ones by id.
  entries.sort((a, b) => a[0] - b[0] || a[2] - b[2]);
  const out = Buffer.alloc(4 + 8 * entries.length);
  out.writeUInt32LE(VERSION, 0);
  entries.forEach(([tag, perm, id], i) => {
    out.writeUInt16LE(tag, 4 + 8 * i);
    out.writeUInt16LE(perm, 6 + 8 * i);
    out.writeUInt32LE(id, 8 + 8 * i);
  });
  return out;
}

/**
 * Names resolved as GNU tar resolves those in ACL text on extraction:
 * through the host's /etc/passwd and /etc/group, read once when needed.
 */
export function hostIdLookup(read: (file: string) => string): IdLookup {
  const tables = new Map<string, Map<string, number>>();
  return (kind, name) => {
    const file = kind === 'user' ? '/etc/passwd' : '/etc/group';
    let table = tables.get(file);
    if (!table) {
      table = new Map();
      let text = '';
      try {
        text = read(file);
      } catch {
        // No such file: every name is unknown.
      }
      for (const line of text.split('\n')) {
        const [n, , id] = line.split(':');
        if (n && id && /^[0-9]+$/.test(id)) table.set(n, Number(id));
      }
      tables.set(file, table);
    }
    return table.get(name);
  };
}
