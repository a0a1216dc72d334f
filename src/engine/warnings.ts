/**
 * Metadata a filesystem could not take, counted by kind: one line each at
 * the end ("owner not kept on 1234 entries (EPERM), e.g. /etc/passwd").
 */
export class MetadataWarnings {
  private kinds = new Map<string, { count: number; example: string; code: string }>();

  add(what: string, path: string, code: string): void {
    const k = this.kinds.get(what);
    if (k) k.count++;
    else this.kinds.set(what, { count: 1, example: path, code });
  }

  summary(): string[] {
    return [...this.kinds].map(
      ([what, k]) => `${what} not kept on ${k.count} ${k.count === 1 ? 'entry' : 'entries'} (${k.code}), e.g. ${k.example}`,
    );
  }
}
