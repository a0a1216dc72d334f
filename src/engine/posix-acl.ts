/**
 * POSIX ACLs as the kernel stores them (the system.posix_acl_access and
 * system.posix_acl_default attributes) turned into the text GNU tar keeps
 * in SCHILY.acl.access / SCHILY.acl.default: GNU tar --acls restores ACLs
 * from that text only, not from the raw attributes.
 */

const VERSION = 2;
const TAGS: Record<number, string> = { 0x01: 'user', 0x02: 'user', 0x04: 'group', 0x08: 'group', 0x10: 'mask', 0x20: 'other' };
/** Tags whose entries name a user or group by id. */
const QUALIFIED = new Set([0x02, 0x08]);

/**
 * "user::rw-\nuser:1000:r--\ngroup::r--\nmask::r--\nother::r--\n" (ids as
 * numbers: the image's users are not the host's); undefined for bytes that
 * are not an ACL.
 */
export function aclText(xattr: Buffer): string | undefined {
  // A little-endian u32 version, then 8-byte entries: u16 tag, u16 perm, u32 id.
  if (xattr.length < 4 || (xattr.length - 4) % 8 !== 0 || xattr.readUInt32LE(0) !== VERSION) return undefined;
  let text = '';
  for (let at = 4; at < xattr.length; at += 8) {
    const tag = xattr.readUInt16LE(at);
    const perm = xattr.readUInt16LE(at + 2);
    const name = TAGS[tag];
    if (name === undefined) return undefined;
    const id = QUALIFIED.has(tag) ? String(xattr.readUInt32LE(at + 4)) : '';
    const rwx = `${perm & 4 ? 'r' : '-'}${perm & 2 ? 'w' : '-'}${perm & 1 ? 'x' : '-'}`;
    text += `${name}:${id}:${rwx}\n`;
  }
  return text;
}
