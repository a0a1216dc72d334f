/**
 * Which extended attributes a copy out of an image carries (to the host;
 * into a tar archive, native/src/xattrs.h's FileOwn decides the same way):
 * the file's own, in a namespace Linux can set. Left
 * out, as cp -a leaves them out (attr's xattr.conf): XFS's second copy of
 * its ACLs as trusted.SGI_ACL_* (copied, it would be a stray ACL) and its
 * old xfsroot.* names, security.evm (a signature only the kernel that made
 * it may write); and names in no namespace at all, such as ntfs3's $LXUID
 * and $LXGID (WSL's owner fields, which stat already gives), which no
 * Linux filesystem can take.
 */
const NOT_COPIED = /^(trusted\.SGI_|xfsroot\.|security\.evm$)/;
const NAMESPACED = /^(user|trusted|security|system)\./;

export function fileOwn(name: string): boolean {
  return NAMESPACED.test(name) && !NOT_COPIED.test(name);
}
