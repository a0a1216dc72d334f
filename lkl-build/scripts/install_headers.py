#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Install the kernel's uapi headers for host programs that use lkl.

Host programs include the kernel's uapi headers next to the host libc's
headers, and both define the same names (struct stat, O_RDONLY, and __u64
from the host's own <linux/types.h>, which libc headers include). So the
headers are installed under lkl/ with every name the set defines prefixed
and every include of an installed header pointing into lkl/:

  __NAME -> __lkl__NAME      (__u64, __NR_openat, __kernel_size_t)
  Name   -> LKL_Name         (O_RDONLY, _IOR, enumeration constants)
  name   -> lkl_name         (struct stat, sigset_t, inline functions)

Names already so prefixed (asm/host_ops.h, asm/library.h), C keywords,
the compiler's predefined macros and names the headers only use are left
alone. On top, lkl/syscalls.h gets a typed wrapper for each system call
the kernel image implements (lkl_sys_openat(...) -> lkl_syscall()).

Usage:
  install_headers.py --src SRC --obj OBJDIR --vmlinux VMLINUX --out OUTDIR

OBJDIR is scratch space for the kernel's headers_install. The result is
OUTDIR/lkl/, replaced as a whole. CC, NM and MAKE may name other tools.
"""

import argparse
import collections
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

ARCH = 'lkl'


class Error(Exception):
    pass


def run(cmd, what, **kwargs):
    """Runs a tool and returns its stdout; a failure becomes an Error that
    carries the end of the tool's own error output."""
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True,
                              **kwargs)
    except OSError as e:
        raise Error('%s: cannot run %s: %s' % (what, cmd[0], e))
    if proc.returncode != 0:
        tail = '\n'.join(proc.stderr.strip().splitlines()[-20:])
        raise Error('%s failed (exit %d): %s\n%s' %
                    (what, proc.returncode, ' '.join(cmd), tail))
    return proc.stdout


def tool(var, default):
    return os.environ.get(var) or default


@contextlib.contextmanager
def reading(path):
    """Names the header in an error about its contents."""
    try:
        yield
    except Error as e:
        raise Error('%s: %s' % (path, e))


# ---------------------------------------------------------------------------
# Tokens

# Comments and literals are tokens of their own so that nothing inside them
# is ever renamed. Numbers are preprocessing numbers (0x10UL, 1e-3) so their
# suffixes are not taken for identifiers. A backslash-newline counts as
# blank space: it continues a directive without ending it.
TOKEN_RE = re.compile(r'''
    (?P<comment> /\*.*?\*/ | //(?:[^\n\\]|\\.)* )
  | (?P<nl>      \n )
  | (?P<ws>      (?:[ \t\r\f\v]|\\\r?\n)+ )
  | (?P<str>     "(?:[^"\\\n]|\\.)*" )
  | (?P<chr>     '(?:[^'\\\n]|\\.)*' )
  | (?P<num>     \.?[0-9](?:[eEpP][+-]|[0-9A-Za-z_.])* )
  | (?P<id>      [A-Za-z_][A-Za-z0-9_]* )
  | (?P<punct>   \#\# | \.\.\. | -> | <<= | >>= | << | >> | && | \|\|
               | [<>=!+\-*/%&|^]= | \+\+ | -- | . )
''', re.S | re.X)

BLANK = ('comment', 'nl', 'ws')
INCLUDE_RE = re.compile(r'(#\s*include\s*)([<"])([^>"]+)([>"])')


class Header:
    """One installed header as tokens, with its directives marked.

    toks:     [kind, text] pairs; renaming rewrites the text in place.
    code:     indices of the C tokens (not blank, not in a directive).
    dirs:     (directive name, indices of its non-blank tokens).
    """

    def __init__(self, relpath, text):
        self.relpath = relpath
        self.toks = [[m.lastgroup, m.group()] for m in TOKEN_RE.finditer(text)]
        self.code = []
        self.dirs = []
        line_start = True
        i = 0
        n = len(self.toks)
        while i < n:
            kind = self.toks[i][0]
            if kind == 'nl':
                line_start = True
            elif kind in BLANK:
                pass
            elif line_start and self.toks[i][1] == '#':
                # A directive runs to the first newline outside a comment.
                idx = []
                while i < n and self.toks[i][0] != 'nl':
                    if self.toks[i][0] not in BLANK:
                        idx.append(i)
                    i += 1
                name = self.toks[idx[1]][1] if len(idx) > 1 else ''
                self.dirs.append((name, idx))
                continue
            else:
                line_start = False
                self.code.append(i)
            i += 1

    def span(self, idx):
        return ''.join(t[1] for t in self.toks[idx[0]:idx[-1] + 1])

    def text(self):
        return ''.join(t[1] for t in self.toks)


def match_paren(texts, k):
    """texts[k] opens a ( [ or { group: the index of its closer."""
    opener = texts[k]
    closer = {'(': ')', '[': ']', '{': '}'}[opener]
    depth = 0
    for j in range(k, len(texts)):
        if texts[j] == opener:
            depth += 1
        elif texts[j] == closer:
            depth -= 1
            if depth == 0:
                return j
    raise Error('unbalanced %s' % opener)


def split_args(texts, k):
    """Argument spans [(start, end)] of the call whose '(' is texts[k]."""
    end = match_paren(texts, k)
    args = []
    start = k + 1
    depth = 0
    for j in range(k + 1, end):
        t = texts[j]
        if t in ('(', '[', '{'):
            depth += 1
        elif t in (')', ']', '}'):
            depth -= 1
        elif t == ',' and depth == 0:
            args.append((start, j))
            start = j + 1
    args.append((start, end))
    return args


# ---------------------------------------------------------------------------
# Which names the headers define

C_KEYWORDS = set('''
    auto break case char const continue default do double else enum extern
    float for goto if inline int long register restrict return short signed
    sizeof static struct switch typedef union unsigned void volatile while
    _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn
    _Static_assert _Thread_local alignas alignof bool constexpr false nullptr
    static_assert thread_local true typeof typeof_unqual _BitInt _Decimal32
    _Decimal64 _Decimal128
    asm __asm __asm__ __attribute __attribute__ __inline __inline__
    __extension__ __signed __signed__ __volatile __volatile__ __const
    __const__ __restrict __restrict__ __typeof __typeof__ __alignof
    __alignof__ __label__ __real__ __imag__ __complex__ __thread __int128
    __auto_type __func__ __FUNCTION__ __PRETTY_FUNCTION__ __seg_fs __seg_gs
    defined _Pragma __VA_ARGS__ __VA_OPT__ __has_include __has_include_next
    __has_attribute __has_c_attribute __has_cpp_attribute __has_builtin
    __has_feature __has_extension __FILE__ __LINE__ __DATE__ __TIME__
    __COUNTER__ __BASE_FILE__ __FILE_NAME__ __INCLUDE_LEVEL__ __TIMESTAMP__
    __KERNEL__ __ASSEMBLY__ __cplusplus __STDC__ __STDC_VERSION__
    __STDC_HOSTED__ __STRICT_ANSI__ __OPTIMIZE__ __CHECKER__
'''.split())

AGGREGATES = ('struct', 'union', 'enum')
QUALIFIERS = ('const', 'volatile', 'restrict', '__restrict', '__restrict__')
ATTRIBUTES = ('__attribute__', '__attribute')

# Never renamed even if a header happens to define them.
COMPILER_PREFIXES = ('__builtin_', '__atomic_', '__sync_')

# Names a header defines for itself already carry the prefix (asm/host_ops.h).
OWN_PREFIXES = ('lkl_', 'LKL_', '__lkl')

# libc's own names, which linux/coda.h defines only where libc does not
# (__BIT_TYPES_DEFINED__ is glibc's sign that it has). Other headers use
# them meaning libc's, so they keep their names.
LIBC_FALLBACKS = {'int8_t', 'int16_t', 'int32_t', 'u_int8_t', 'u_int16_t',
                  'u_int32_t', 'u_quad_t', 'u_long', 'u_int', 'u_short',
                  'ino_t', 'dev_t', 'caddr_t', '__BIT_TYPES_DEFINED__'}

# Headers that include these libc headers use, without including them, the
# definitions of the kernel headers listed (struct timeval in
# linux/videodev2.h, _IOR in linux/auto_fs.h, __LITTLE_ENDIAN in
# linux/patchkey.h): libc provided them in the same form. Renamed, they
# come from these kernel headers, which are included next to libc's.
LIBC_EQUIVALENTS = {
    'sys/ioctl.h': ['linux/ioctl.h'],
    'sys/time.h': ['linux/time.h'],
    'time.h': ['linux/time.h'],
    'endian.h': ['asm/byteorder.h'],
}

# Names the headers do not define but that are renamed anyway:
# - Headers test __GLIBC__ to leave out what libc already defines (see
#   linux/libc-compat.h, linux/stat.h). Prefixed names never clash with
#   libc, so renaming the test to a never-defined name keeps every
#   definition (except in headers that define LIBC_FALLBACKS).
# - Struct members that libcs (glibc, musl) define as macros naming a member
#   path (#define st_atime st_atim.tv_sec): with libc's header included
#   first, the kernel's member of that name would be mangled.
FORCED_RENAMES = {'__GLIBC__',
                  'st_atime', 'st_mtime', 'st_ctime',
                  'sa_handler', 'sa_sigaction',
                  'arp_hrd', 'arp_pro', 'arp_hln', 'arp_pln', 'arp_op'}


def compiler_macros(cc):
    """The compiler's predefined macros (__GNUC__, __LP64__, ...): headers
    test them, and one a header defines as a fallback keeps its name so
    that the compiler's definition still counts."""
    out = run([cc, '-dM', '-E', '-x', 'c', os.devnull], 'listing predefined macros')
    return set(re.findall(r'^#define (\w+)', out, re.M))


def renamed(name):
    """The prefixed form of a name the headers define."""
    if name.startswith('__'):
        return '__lkl' + name
    first = name.lstrip('_')[:1]
    return ('LKL_' if first.isupper() else 'lkl_') + name


def is_ident(t):
    return re.match(r'[A-Za-z_]\w*$', t) is not None


class Macro:
    """What renaming needs to know about a macro (all its #defines).

    paste: parameters that are pasted (##) or stringified (#): an argument
           there is text, not a name, and must not be renamed.
    tags:  parameters used as a struct/union/enum tag (__struct_group).
    """

    def __init__(self):
        self.objlike = False
        self.fnlike = False
        self.nparams = 0
        self.variadic = False
        self.paste = set()
        self.tags = set()
        self.bodies = []   # (params, body texts) of function-like #defines

    def position(self, arg):
        """The parameter an argument binds to."""
        if self.variadic and arg >= self.nparams - 1:
            return self.nparams - 1
        return arg


def read_define(h, idx):
    """(name, params or None, variadic, body texts) of a #define."""
    name_i = idx[2]
    name = h.toks[name_i][1]
    texts = [h.toks[i][1] for i in idx[3:]]
    # Function-like only if '(' follows the name with no blank between.
    if name_i + 1 >= len(h.toks) or h.toks[name_i + 1][1] != '(':
        return name, None, False, texts
    close = texts.index(')')
    params = []
    for k in range(1, close):
        if texts[k] == '...' and texts[k - 1] in ('(', ','):
            params.append('__VA_ARGS__')
        elif is_ident(texts[k]):
            params.append(texts[k])  # MEMBERS... is just MEMBERS
    return name, params, '...' in texts[1:close], texts[close + 1:]


def declarator_name(toks):
    """The name a declarator declares: int (*fn)(int) -> fn, x[4] -> x."""
    for k, t in enumerate(toks):
        if t == '(' and k + 1 < len(toks) and toks[k + 1] in ('*', '^', '('):
            return declarator_name(toks[k + 1:match_paren(toks, k)])
        if t in ('(', '['):
            toks = toks[:k]
            break
    ids = [t for t in toks if is_ident(t) and t not in C_KEYWORDS]
    return ids[-1] if ids else None


def typedef_names(toks):
    """Names declared by the tokens between 'typedef' and ';'."""
    flat = []
    depth = 0
    k = 0
    while k < len(toks):
        t = toks[k]
        if t in ATTRIBUTES and k + 1 < len(toks) and toks[k + 1] == '(':
            k = match_paren(toks, k + 1) + 1
            continue
        if t == '{':
            depth += 1
        elif t == '}':
            depth -= 1
        elif depth == 0 and t != '__extension__':
            flat.append(t)
        k += 1
    names = []
    chunk = []
    depth = 0
    for t in flat + [',']:
        if t in ('(', '['):
            depth += 1
        elif t in (')', ']'):
            depth -= 1
        if t == ',' and depth == 0:
            name = declarator_name(chunk)
            if name:
                names.append(name)
            chunk = []
        else:
            chunk.append(t)
    return names


def enumerators(texts, kinds, j, end):
    """Enumeration constants in the enum body texts[j:end].

    A body may also hold macro calls that expand to enumerators
    (___BPF_FUNC_MAPPER(...)); those are not names defined here."""
    names = []
    expect = True
    while j < end:
        t = texts[j]
        if t == ',':
            expect = True
        elif t in ('(', '['):
            j = match_paren(texts, j) + 1
            continue
        elif expect and kinds[j] == 'id':
            nxt = texts[j + 1] if j + 1 < end else '}'
            if nxt == '(':
                j = match_paren(texts, j + 1) + 1
                continue
            if nxt in ('=', ',', '}') or nxt in ATTRIBUTES:
                names.append(t)
            expect = False
        j += 1
    return names


class Names:
    """Every name the header set defines: its kinds, and which header
    defines it. Kinds: 'obj' and 'fn' macros, 'tag's and 'ord'inary
    identifiers (typedefs, enumeration constants, functions)."""

    def __init__(self):
        self.kinds = {}
        self.where = {}
        self.typedefs = set()
        self.macros = {}
        self.includers = collections.Counter()  # header -> how many include it

    def count_includes(self, h, installed):
        for dname, idx in h.dirs:
            m = INCLUDE_RE.search(h.span(idx)) if dname == 'include' else None
            if m and m.group(2) == '<' and m.group(3) in installed:
                self.includers[m.group(3)] += 1

    def add(self, name, kind, h):
        self.kinds.setdefault(name, set()).add(kind)
        self.where.setdefault(name, set()).add(h.relpath)

    def scan_macros(self, h):
        for dname, idx in h.dirs:
            if dname != 'define' or len(idx) < 3:
                continue
            name, params, variadic, body = read_define(h, idx)
            m = self.macros.setdefault(name, Macro())
            if params is None:
                m.objlike = True
                self.add(name, 'obj', h)
                continue
            if not m.fnlike:
                m.fnlike = True
                m.nparams = len(params)
                m.variadic = variadic
            self.add(name, 'fn', h)
            m.bodies.append((params, body))
            for p, t in enumerate(body):
                if t in params and (
                        (p >= 1 and body[p - 1] in AGGREGATES) or
                        (p >= 3 and body[p - 1] == '(' and body[p - 3] in AGGREGATES)):
                    # struct TAG, or struct __struct_group_tag(TAG)
                    m.tags.add(params.index(t))

    def find_pasted(self):
        """Finds the parameters of each macro that are only ever pasted:
        directly, or by handing them on to another macro that pastes them.
        A parameter also used as it is (struct type ## _x ... struct type)
        needs its argument renamed."""
        changed = True
        while changed:
            changed = False
            for m in self.macros.values():
                for params, body in m.bodies:
                    pasted = set()   # positions in body
                    for p, t in enumerate(body):
                        if t not in params:
                            continue
                        prev = body[p - 1] if p > 0 else ''
                        nxt = body[p + 1] if p + 1 < len(body) else ''
                        # ", ## args" only drops a comma; it pastes nothing.
                        if (nxt == '##' or prev == '#' or
                                (prev == '##' and (p < 2 or body[p - 2] != ','))):
                            pasted.add(p)
                    for k in range(len(body) - 1):
                        inner = self.macros.get(body[k])
                        if not (inner and inner.fnlike and body[k + 1] == '('):
                            continue
                        try:
                            args = split_args(body, k + 1)
                        except Error:
                            continue  # the call is completed by the macro's user
                        for a, (s, e) in enumerate(args):
                            if e == s + 1 and inner.position(a) in inner.paste:
                                pasted.add(s)
                    for i, param in enumerate(params):
                        uses = [p for p, t in enumerate(body) if t == param]
                        if uses and all(p in pasted for p in uses) and i not in m.paste:
                            m.paste.add(i)
                            changed = True

    def scan_code(self, h):
        texts = [h.toks[i][1] for i in h.code]
        kinds = [h.toks[i][0] for i in h.code]
        n = len(texts)
        depth = 0
        j = 0
        while j < n:
            t = texts[j]
            if t in AGGREGATES:
                k = j + 1
                while k < n and texts[k] in ATTRIBUTES:
                    k = match_paren(texts, k + 1) + 1
                tag = None
                if k < n and kinds[k] == 'id':
                    tag = texts[k]
                    k += 1
                    while k < n and texts[k] in ATTRIBUTES:
                        k = match_paren(texts, k + 1) + 1
                if k < n and texts[k] == '{':
                    if tag:
                        self.add(tag, 'tag', h)
                    if t == 'enum':
                        for e in enumerators(texts, kinds, k + 1, match_paren(texts, k)):
                            self.add(e, 'ord', h)
            elif t == 'typedef':
                k = j + 1
                d = 0
                while k < n and not (d == 0 and texts[k] == ';'):
                    d += (texts[k] == '{') - (texts[k] == '}')
                    k += 1
                for name in typedef_names(texts[j + 1:k]):
                    self.add(name, 'ord', h)
                    self.typedefs.add(name)
            elif t == '{':
                depth += 1
            elif t == '}':
                depth -= 1
            elif kinds[j] == 'id' and j + 1 < n and texts[j + 1] == '(':
                m = self.macros.get(t)
                if m and m.fnlike and m.tags:
                    # A tag handed to a macro that defines the struct.
                    for a, (s, e) in enumerate(split_args(texts, j + 1)):
                        if m.position(a) in m.tags and e == s + 1 and kinds[s] == 'id':
                            self.add(texts[s], 'tag', h)
                elif depth == 0 and t not in C_KEYWORDS:
                    # A function definition: name ( ... ) [attributes] {
                    k = match_paren(texts, j + 1) + 1
                    while k < n and texts[k] in ATTRIBUTES:
                        k = match_paren(texts, k + 1) + 1
                    if k < n and texts[k] == '{':
                        self.add(t, 'ord', h)
            j += 1


# ---------------------------------------------------------------------------
# Renaming


class Renamer:
    """Renames the defined names in one header, in place.

    Macros are renamed wherever they would expand. Tags live in their own
    namespace, so only 'struct NAME' and the like are renamed; struct
    members are a namespace per struct, so a member that shares its name
    with a typedef or a constant keeps it (the header may say __u32 stat;).
    """

    def __init__(self, names, renames, h):
        self.names = names
        self.renames = renames
        self.h = h
        # A header that defines libc's own fallback names tests __GLIBC__
        # about those, not about kernel names (linux/coda.h).
        self.keep_glibc = any(h.relpath in names.where.get(n, ())
                              for n in LIBC_FALLBACKS)

    def run(self, installed):
        h = self.h
        for dname, idx in h.dirs:
            if dname == 'include':
                h.toks[idx[0]][1] = self.include(h.span(idx), installed)
                for i in range(idx[0] + 1, idx[-1] + 1):
                    h.toks[i][1] = ''
            elif dname in ('error', 'warning'):
                continue
            elif len(idx) > 2:
                params = ()
                if dname == 'define':
                    params = read_define(h, idx)[1] or ()
                    self.paste_fragments(idx, params)
                self.stream(idx[2:], directive=True, params=params)
        self.stream(h.code, directive=False)

    def include(self, text, installed):
        """The text of an #include directive, pointed into lkl/."""
        m = INCLUDE_RE.search(text)
        if not m or m.group(2) != '<':
            return text  # "drm.h" stays next to its includer
        path = m.group(3)
        if path in installed:
            return text[:m.start(3)] + 'lkl/' + text[m.start(3):]
        for extra in LIBC_EQUIVALENTS.get(path, ()):
            if extra not in installed:
                raise Error('%s is not installed' % extra)
            text += '\n#include <lkl/%s>' % extra
        return text

    def paste_fragments(self, idx, params):
        """A name built by pasting (NILFS_CPINFO_##flag) is one of the
        headers' own: prefix its fixed first part to match the renamed
        definitions."""
        h = self.h
        for p in range(3, len(idx) - 1):
            tok = h.toks[idx[p]]
            if (tok[0] == 'id' and h.toks[idx[p + 1]][1] == '##'
                    and h.toks[idx[p - 1]][1] != '##' and tok[1] not in params
                    and tok[1] not in self.renames
                    and not tok[1].startswith(OWN_PREFIXES)):
                tok[1] = renamed(tok[1])

    def stream(self, seq, directive, params=()):
        """Renames in one directive (a macro's parameters are its own
        names) or in all of the header's C code."""
        h = self.h
        texts = [h.toks[i][1] for i in seq]
        kinds = [h.toks[i][0] for i in seq]
        n = len(texts)
        in_args = [False] * n   # inside the arguments of a macro call
        pasted = [False] * n    # text that a macro pastes, not a name
        tagarg = [False] * n    # a tag handed to a macro
        designator = [False] * n  # offsetof(type, member.member)
        for k in range(n - 1):
            if kinds[k] != 'id' or texts[k + 1] != '(':
                continue
            try:
                args = split_args(texts, k + 1)
            except Error:
                if directive:
                    continue  # a macro body may leave a call open
                raise Error('unbalanced ( after %s' % texts[k])
            if texts[k] in ('offsetof', '__builtin_offsetof'):
                for s, e in args[1:]:
                    for x in range(s, e):
                        designator[x] = kinds[x] == 'id' and texts[x - 1] in (',', '.')
                continue
            m = self.names.macros.get(texts[k])
            if not (m and m.fnlike):
                continue
            for a, (s, e) in enumerate(args):
                pos = m.position(a)
                for x in range(s, e):
                    in_args[x] = True
                    pasted[x] = pasted[x] or pos in m.paste
                    tagarg[x] = tagarg[x] or pos in m.tags
        record = [False] * n if directive else self.record_bodies(texts, kinds)

        for k in range(n):
            name = texts[k]
            if kinds[k] != 'id' or name not in self.renames or pasted[k] or name in params:
                continue
            kinds_of = self.names.kinds.get(name, ())
            prev = texts[k - 1] if k > 0 else ''
            nxt = texts[k + 1] if k + 1 < n else ''
            # A macro may name a member path for its user to complete
            # (#define ifr_name ifr_ifrn.ifrn_name).
            member = (prev in ('.', '->') or designator[k]
                      or (directive and nxt in ('.', '->')))
            if name in FORCED_RENAMES:
                if name == '__GLIBC__' and self.keep_glibc:
                    continue
                texts[k] = self.renames[name]
                continue
            do = 'obj' in kinds_of
            if 'fn' in kinds_of and not member and (nxt == '(' or directive or in_args[k]):
                do = True
            # A macro may stand for a tag (#define old_tag new_tag).
            if 'tag' in kinds_of and (self.before(texts, k) in AGGREGATES or tagarg[k]
                                      or (directive and not member)):
                do = True
            if ('ord' in kinds_of and not member
                    and not (record[k] and self.member_declarator(texts, kinds, k))):
                do = True
            if do:
                texts[k] = self.renames[name]
        for k, i in enumerate(seq):
            h.toks[i][1] = texts[k]

    @staticmethod
    def before(texts, k):
        """The token before texts[k], looking through __attribute__s."""
        j = k - 1
        while j >= 0 and texts[j] == ')':
            depth = 0
            while j >= 0:
                depth += (texts[j] == ')') - (texts[j] == '(')
                if depth == 0:
                    break
                j -= 1
            j -= 1
            if j < 0 or texts[j] not in ATTRIBUTES:
                return ''
            j -= 1
        return texts[j] if j >= 0 else ''

    @staticmethod
    def record_bodies(texts, kinds):
        """For each token, whether it is directly in a struct/union body."""
        n = len(texts)
        record = [False] * n
        stack = []
        agg = None     # a struct/union/enum keyword whose body may follow
        tagged = False
        k = 0
        while k < n:
            t = texts[k]
            record[k] = bool(stack) and stack[-1]
            if t == '{':
                stack.append(agg in ('struct', 'union'))
                agg = None
            elif t == '}':
                if stack:
                    stack.pop()
                agg = None
            elif t in AGGREGATES:
                agg, tagged = t, False
            elif agg and t in ATTRIBUTES and k + 1 < n and texts[k + 1] == '(':
                end = match_paren(texts, k + 1)
                for x in range(k, end + 1):
                    record[x] = record[k]
                k = end
            elif agg and not tagged and kinds[k] == 'id':
                tagged = True
            else:
                agg = None
            k += 1
        return record

    @staticmethod
    def member_declarator(texts, kinds, k):
        """Whether texts[k], in a struct body, is the name of a member."""
        nxt = texts[k + 1] if k + 1 < len(texts) else ''
        if nxt not in (';', ',', '[', ':', ')', '=') and nxt not in ATTRIBUTES:
            return False
        j = k - 1
        while j >= 0 and texts[j] in QUALIFIERS:
            j -= 1
        if j < 0:
            return False
        prev = texts[j]
        return prev in ('*', '}') or (kinds[j] == 'id' and prev not in AGGREGATES)


# ---------------------------------------------------------------------------
# System calls


def syscall_table(cc, incdir):
    """[(__NR_ name, implementing symbol)] for the 64-bit generic table.

    The preprocessor resolves the table's conditionals (__BITS_PER_LONG,
    the __ARCH_WANT_ switches of our asm/unistd.h) and __SC_COMP/__SC_3264
    to the symbol a 64-bit kernel uses."""
    src = ('#define __SYSCALL(nr, sym) lkl_entry nr sym\n'
           '#include <asm/unistd.h>\n'
           'lkl_bits __BITS_PER_LONG\n')
    out = run([cc, '-E', '-P', '-dD', '-nostdinc', '-I', incdir, '-x', 'c', '-'],
              'preprocessing asm/unistd.h', input=src)
    if not re.search(r'^lkl_bits 64$', out, re.M):
        raise Error('system call wrappers need a 64-bit host compiler (%s)' % cc)
    values = dict(re.findall(r'^#define (__NR\w*) (\w+)\s*$', out, re.M))

    def value(name):
        seen = set()
        while name in values and name not in seen:
            seen.add(name)
            name = values[name]
        return int(name, 0) if re.match(r'\d', name) else None

    by_nr = {}
    for name in values:
        if name.startswith('__NR_') and name not in ('__NR_syscalls',
                                                     '__NR_arch_specific_syscall'):
            nr = value(name)
            if nr is not None:
                by_nr.setdefault(nr, []).append(name[len('__NR_'):])
    table = []
    for nr, sym in re.findall(r'^lkl_entry \(?(\d+)\)? (\w+)$', out, re.M):
        names = by_nr.get(int(nr), [])
        if len(names) != 1:
            raise Error('system call %s (%s) has %s __NR_ names' %
                        (nr, sym, ', '.join(names) or 'no'))
        table.append((names[0], sym))
    if len(table) < 200:
        raise Error('only %d system calls found in asm/unistd.h' % len(table))
    return table


def kernel_symbols(nm, vmlinux):
    """name -> (class, value, section) for the symbols vmlinux defines."""
    out = run([nm, '-f', 'sysv', vmlinux], 'listing symbols of ' + vmlinux)
    syms = {}
    for line in out.splitlines():
        f = [x.strip() for x in line.split('|')]
        if len(f) >= 7 and f[2] not in ('U', 'w', 'v'):
            syms[f[0]] = (f[2], f[1], f[6])
    if 'sys_ni_syscall' not in syms:
        raise Error('%s defines no sys_ni_syscall: not a kernel image?' % vmlinux)
    return syms


def built_in(sym, syms):
    """Whether the kernel implements sym. A configured-out call still has a
    sys_ symbol, but it is a weak alias of sys_ni_syscall (kernel/sys_ni.c)."""
    if '__se_' + sym in syms:
        return True
    if sym not in syms:
        return False
    cls, value, section = syms[sym]
    ni = syms['sys_ni_syscall']
    return not (cls in ('W', 'V') and (value, section) == (ni[1], ni[2]))


def read_config(vmlinux):
    """CONFIG_ symbols of the .config vmlinux was built with, if it is there."""
    conf = {}
    path = os.path.join(os.path.dirname(os.path.abspath(vmlinux)), '.config')
    if os.path.exists(path):
        with open(path) as f:
            for m in re.finditer(r'^(CONFIG_\w+)=', f.read(), re.M):
                conf[m.group(1)] = 1
    return conf


def eval_condition(expr, macros):
    """Evaluates a simple #if expression (defined, !, &&, ||, comparisons)."""
    expr = re.sub(r'/\*.*?\*/', ' ', expr)
    expr = re.sub(r'\bdefined\s*\(\s*(\w+)\s*\)|\bdefined\s+(\w+)',
                  lambda m: '1' if (m.group(1) or m.group(2)) in macros else '0', expr)
    expr = re.sub(r'\bIS_ENABLED\s*\(\s*(\w+)\s*\)',
                  lambda m: '1' if m.group(1) in macros else '0', expr)
    expr = re.sub(r'\b[A-Za-z_]\w*\b', lambda m: str(macros.get(m.group(), 0)), expr)
    expr = expr.replace('&&', ' and ').replace('||', ' or ')
    expr = re.sub(r'!(?!=)', ' not ', expr)
    expr = re.sub(r'\b(\d+)[uUlL]+\b', r'\1', expr)
    try:
        return bool(eval(expr, {'__builtins__': {}}, {}))
    except Exception:
        raise Error('cannot evaluate #if %s' % expr)


def active_text(path, macros):
    """The text of a kernel header that its conditionals leave in, given the
    macros that are defined (conditionals only, no expansion)."""
    with open(path) as f:
        text = f.read()
    text = re.sub(r'/\*.*?\*/', lambda m: '\n' * m.group().count('\n'), text, flags=re.S)
    text = text.replace('\\\n', ' ')
    out = []
    stack = []  # (this branch on, some branch taken, enclosing on)
    on = True
    for line in text.split('\n'):
        m = re.match(r'\s*#\s*(\w+)\s*(.*)', line)
        d = m.group(1) if m else None
        if d in ('if', 'ifdef', 'ifndef'):
            arg = m.group(2).strip()
            if d == 'ifdef':
                c = arg.split()[0] in macros
            elif d == 'ifndef':
                c = arg.split()[0] not in macros
            else:
                c = on and eval_condition(arg, macros)
            stack.append((c, c, on))
            on = on and c
        elif d == 'elif':
            c, taken, outer = stack.pop()
            c = not taken and outer and eval_condition(m.group(2), macros)
            stack.append((c, taken or c, outer))
            on = outer and c
        elif d == 'else':
            c, taken, outer = stack.pop()
            stack.append((not taken, True, outer))
            on = outer and not taken
        elif d == 'endif':
            on = stack.pop()[2]
        elif on and not m:
            out.append(line)
    return '\n'.join(out)


# Annotations that only matter to the kernel's static checkers.
ANNOTATIONS = {'__user', '__force', '__kernel', '__iomem', '__nocast', '__safe',
               '__rcu', '__percpu', '__bitwise', '__must_check'}

C_TYPE_WORDS = {'void', 'char', 'short', 'int', 'long', 'signed', 'unsigned',
                'const', 'volatile', 'float', 'double', '_Bool'}

# Kernel-internal types of the system call prototypes (include/linux/types.h,
# linux/quota.h, linux/key.h, linux/fs.h) that the uapi does not define,
# spelled in prefixed uapi types of the same size and signedness.
KERNEL_TYPES = {
    'umode_t': 'unsigned short',
    'mode_t': '__lkl__kernel_mode_t',
    'dev_t': '__lkl__u32',
    'ino_t': '__lkl__kernel_ulong_t',
    'nlink_t': '__lkl__u32',
    'off_t': '__lkl__kernel_off_t',
    'loff_t': '__lkl__kernel_loff_t',
    'pid_t': '__lkl__kernel_pid_t',
    'uid_t': '__lkl__kernel_uid32_t',
    'gid_t': '__lkl__kernel_gid32_t',
    'qid_t': '__lkl__kernel_uid32_t',
    'key_t': '__lkl__kernel_key_t',
    'key_serial_t': '__lkl__s32',
    'mqd_t': '__lkl__kernel_mqd_t',
    'timer_t': '__lkl__kernel_timer_t',
    'clockid_t': '__lkl__kernel_clockid_t',
    'size_t': '__lkl__kernel_size_t',
    'ssize_t': '__lkl__kernel_ssize_t',
    'time_t': '__lkl__kernel_old_time_t',
    'old_time_t': '__lkl__kernel_old_time_t',
    'rwf_t': '__lkl__kernel_rwf_t',
    'fd_set': '__lkl__kernel_fd_set',
    'u8': '__lkl__u8', 'u16': '__lkl__u16', 'u32': '__lkl__u32', 'u64': '__lkl__u64',
    's8': '__lkl__s8', 's16': '__lkl__s16', 's32': '__lkl__s32', 's64': '__lkl__s64',
}


def split_params(text):
    """Token lists of the comma-separated parameters of a prototype."""
    params = []
    cur = []
    depth = 0
    for m in TOKEN_RE.finditer(text):
        if m.lastgroup in BLANK:
            continue
        t = m.group()
        depth += (t in '([') - (t in ')]')
        if t == ',' and depth == 0:
            params.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur:
        params.append(cur)
    return params


def prototypes(src, vmlinux):
    """sys_ symbol -> parameter token lists, from include/linux/syscalls.h
    and the SYSCALL_DEFINEn()s of our arch (which define e.g. sys_mmap)."""
    macros = dict(read_config(vmlinux))
    macros['BITS_PER_LONG'] = 64
    text = active_text(os.path.join(src, 'include/linux/syscalls.h'), macros)
    protos = {}
    for m in re.finditer(r'asmlinkage\s+long\s+(sys_\w+)\s*\(([^;]*)\)\s*;', text):
        params = split_params(m.group(2))
        if params == [['void']]:
            params = []
        protos.setdefault(m.group(1), params)
    archdir = os.path.join(src, 'arch', ARCH)
    for root, _, files in os.walk(archdir):
        for fn in files:
            if not fn.endswith('.c'):
                continue
            with open(os.path.join(root, fn)) as f:
                text = f.read()
            # SYSCALL_DEFINE3(name, type, arg, type, arg, type, arg)
            for m in re.finditer(r'SYSCALL_DEFINE(\d)\s*\(\s*(\w+)\s*((?:,[^,)]*,[^,)]*)*)\)',
                                 text):
                pairs = split_params(m.group(3).lstrip(','))
                params = [pairs[k] + pairs[k + 1] for k in range(0, len(pairs), 2)]
                if len(params) != int(m.group(1)):
                    raise Error('%s: cannot read SYSCALL_DEFINE%s(%s)' %
                                (fn, m.group(1), m.group(2)))
                protos.setdefault('sys_' + m.group(2), params)
    if len(protos) < 200:
        raise Error('only %d prototypes found in include/linux/syscalls.h' % len(protos))
    return protos


def argument_counts(src, syms):
    """sys_ symbol -> argument count, from the SYSCALL_DEFINEn() of the
    calls in syms anywhere in the generic kernel sources: the fallback for a
    call that include/linux/syscalls.h does not declare."""
    if not syms:
        return {}
    pattern = r'\bSYSCALL_DEFINE[0-6]\((%s)\b' % '|'.join(s[len('sys_'):] for s in syms)
    cmd = ['grep', '-rhoE', '--include=*.c', '--exclude-dir=arch', '--exclude-dir=tools',
           pattern, src]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, universal_newlines=True)
    if proc.returncode > 1:
        raise Error('grep for SYSCALL_DEFINE in %s failed' % src)
    return {'sys_' + m.group(2): int(m.group(1))
            for m in re.finditer(r'SYSCALL_DEFINE(\d)\((\w+)', proc.stdout)}


class TypeMapper:
    """Spells the types of kernel prototypes in prefixed host types."""

    def __init__(self, renames, names):
        self.renames = renames      # kernel name -> prefixed name
        self.original = {v: k for k, v in renames.items()}
        self.names = names
        self.typedefs = {}          # lkl_<type> -> definition
        self.headers = set()        # installed headers the types need
        self.tags = set()           # struct/union tags to declare

    def header_for(self, name):
        """The header to include for a name's definition: of those that
        define it, a core one (not drm/drm.h's fallback __u64) that most
        headers include (asm-generic/int-ll64.h, not the int-l64.h of other
        architectures)."""
        families = ('linux/', 'asm/', 'asm-generic/')

        def rank(path):
            family = [f for f in families if path.startswith(f)]
            return (families.index(family[0]) if family else len(families),
                    -self.names.includers[path], path)
        return min(self.names.where[name], key=rank)

    def param(self, toks, sym):
        """'TYPE' for one parameter's tokens (its name, if any, dropped)."""
        toks = [t for t in toks if t not in ANNOTATIONS]
        array = bool(toks) and toks[-1] == ']'
        if array:
            toks = toks[:toks.index('[')]
        # A trailing identifier is the parameter's name unless it is all the
        # type there is: 'aio_context_t', 'const cap_user_data_t', 'struct x'.
        typeish = [t for t in toks[:-1] if is_ident(t) and t not in QUALIFIERS]
        if (toks and is_ident(toks[-1]) and toks[-1] not in C_TYPE_WORDS
                and typeish and toks[-2] not in AGGREGATES):
            toks = toks[:-1]
        if array:
            toks.append('*')  # int fds[] is int *fds
        out = []
        for k, t in enumerate(toks):
            if not is_ident(t) or t in C_TYPE_WORDS or t in AGGREGATES:
                out.append(t)
            elif k > 0 and toks[k - 1] in AGGREGATES:
                tag = self.renames.get(t, renamed(t))
                self.tags.add(toks[k - 1] + ' ' + tag)
                out.append(tag)
            elif t in self.renames and t in self.names.typedefs:
                self.headers.add(self.header_for(t))
                out.append(self.renames[t])
            elif t in KERNEL_TYPES:
                if 'lkl_' + t in self.renames.values():
                    raise Error('lkl_%s is both a uapi name and a kernel type' % t)
                self.typedefs['lkl_' + t] = KERNEL_TYPES[t]
                for word in KERNEL_TYPES[t].split():
                    if self.original.get(word) in self.names.typedefs:
                        self.headers.add(self.header_for(self.original[word]))
                out.append('lkl_' + t)
            else:
                raise Error('%s: no host spelling for kernel type %s; add it to '
                            'KERNEL_TYPES' % (sym, t))
        return re.sub(r'\* ', '*', ' '.join(out))


def syscalls_header(src, table, syms, protos, renames, names, own_api):
    """Text of lkl/syscalls.h, the number of wrappers and a report of the
    calls that have none or only untyped ones."""
    types = TypeMapper(renames, names)
    wrappers = []
    skipped = {}
    counts = argument_counts(src, [sym for _, sym in table
                                   if sym not in protos and built_in(sym, syms)])
    for name, sym in table:
        wrapper = 'lkl_sys_' + name
        if sym == 'sys_ni_syscall':
            skipped.setdefault('the table leaves to sys_ni_syscall', []).append(name)
            continue
        if wrapper in own_api:
            skipped.setdefault('whose wrapper name asm/library.h takes', []).append(name)
            continue
        if wrapper in renames.values():
            raise Error('%s would clash with a renamed uapi name' % wrapper)
        if not built_in(sym, syms):
            skipped.setdefault('not built into vmlinux, left out', []).append(name)
            continue
        if sym in protos:
            params = [types.param(p, sym) for p in protos[sym]]
        elif sym in counts:
            skipped.setdefault('without a prototype, taking long arguments', []).append(name)
            params = ['long'] * counts[sym]
        else:
            skipped.setdefault('without a prototype or SYSCALL_DEFINE, left out', []).append(name)
            continue
        if len(params) > 6:
            raise Error('%s takes %d arguments' % (sym, len(params)))
        args = ', '.join('%s a%d' % (t, k + 1) if not t.endswith('*') else '%sa%d' % (t, k + 1)
                         for k, t in enumerate(params)) or 'void'
        values = ', '.join('(long)a%d' % (k + 1) for k in range(len(params))) or '0'
        wrappers.append(
            'static inline long %s(%s)\n{\n'
            '\tlong lkl_params[6] = { %s };\n\n'
            '\treturn lkl_syscall(%s, lkl_params);\n}\n' %
            (wrapper, args, values, renames['__NR_' + name]))

    lines = ['/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */',
             '/* Generated by install_headers.py from the kernel\'s system call table',
             ' * and prototypes; do not edit. */',
             '#ifndef __LKL_SYSCALLS_H', '#define __LKL_SYSCALLS_H', '',
             '#include <lkl/asm/library.h>', '#include <lkl/asm/unistd.h>']
    lines += ['#include <lkl/%s>' % h for h in sorted(types.headers)]
    lines += ['', '/* Kernel-internal types of the system call prototypes. */']
    lines += ['typedef %s %s;' % (d, n) for n, d in sorted(types.typedefs.items())]
    lines += ['', '/* Only pointed to; the uapi headers define those that user space sees. */']
    lines += ['%s;' % t for t in sorted(types.tags)]
    lines += ['']
    for why, which in sorted(skipped.items()):
        lines += ['/*'] + textwrap.wrap('System calls %s: %s.' % (why, ', '.join(which)),
                                        width=76, initial_indent=' * ',
                                        subsequent_indent=' * ', break_on_hyphens=False)
        lines += [' */', '']
    text = '\n'.join(lines) + '\n' + '\n'.join(wrappers) + '\n#endif\n'
    return text, len(wrappers), skipped


# ---------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--src', required=True, help='kernel source tree')
    ap.add_argument('--obj', required=True, help='scratch object dir for headers_install')
    ap.add_argument('--vmlinux', required=True, help='the built kernel (relocatable) image')
    ap.add_argument('--out', required=True, help='install prefix; headers go to OUT/lkl')
    args = ap.parse_args()
    cc = tool('CC', 'cc')
    started = time.time()

    for path, what in ((args.src, 'kernel source tree'), (args.vmlinux, 'vmlinux')):
        if not os.path.exists(path):
            raise Error('%s %s does not exist' % (what, path))
    os.makedirs(args.obj, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.lkl-headers-', dir=args.out)
    try:
        run([tool('MAKE', 'make'), '-s', '-C', os.path.abspath(args.src),
             'O=' + os.path.abspath(args.obj), 'ARCH=' + ARCH,
             'INSTALL_HDR_PATH=' + tmp, 'headers_install'], 'headers_install')
        incdir = os.path.join(tmp, 'include')

        headers = []
        for root, _, files in os.walk(incdir):
            for fn in files:
                path = os.path.join(root, fn)
                with open(path, encoding='utf-8', errors='surrogateescape') as f:
                    headers.append(Header(os.path.relpath(path, incdir), f.read()))
        if not headers:
            raise Error('headers_install installed nothing')
        headers.sort(key=lambda h: h.relpath)
        installed = {h.relpath for h in headers}

        # First every name and what it is, then the renaming, which for
        # each use needs to know what the name is anywhere in the set.
        names = Names()
        for h in headers:
            with reading(h.relpath):
                names.scan_macros(h)
                names.count_includes(h, installed)
        names.find_pasted()
        for h in headers:
            with reading(h.relpath):
                names.scan_code(h)
        predefined = compiler_macros(cc)
        renames = {}
        for name in set(names.kinds) | FORCED_RENAMES:
            if not (name in C_KEYWORDS or name in predefined or name in LIBC_FALLBACKS
                    or name.startswith(COMPILER_PREFIXES + OWN_PREFIXES)):
                renames[name] = renamed(name)

        # Syscall facts come from the unrenamed headers, before rewriting.
        table = syscall_table(cc, incdir)
        syms = kernel_symbols(tool('NM', 'nm'), args.vmlinux)
        protos = prototypes(args.src, args.vmlinux)
        with open(os.path.join(incdir, 'asm/library.h')) as f:
            own_api = set(re.findall(r'\b(lkl_sys_\w+)\s*\(', f.read()))

        lkl = os.path.join(tmp, 'lkl')
        for h in headers:
            with reading(h.relpath):
                Renamer(names, renames, h).run(installed)
            dest = os.path.join(lkl, h.relpath)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, 'w', encoding='utf-8', errors='surrogateescape') as f:
                f.write(h.text())

        text, count, skipped = syscalls_header(args.src, table, syms, protos, renames,
                                               names, own_api)
        with open(os.path.join(lkl, 'syscalls.h'), 'w') as f:
            f.write(text)

        final = os.path.join(args.out, 'lkl')
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(lkl, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print('install_headers: %d headers, %d names renamed, %d system call wrappers '
          'in %s (%.1fs)' % (len(headers), len(renames), count, final, time.time() - started))
    for why, which in sorted(skipped.items()):
        print('install_headers: system calls %s: %s' % (why, ' '.join(which)))


if __name__ == '__main__':
    try:
        main()
    except Error as e:
        sys.exit('install_headers: error: %s' % e)
