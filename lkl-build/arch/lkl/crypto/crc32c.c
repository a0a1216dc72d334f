// SPDX-License-Identifier: GPL-2.0
/*
 * crc32c (Castagnoli) with the x86-64 SSE4.2 crc32 instruction, as the
 * crypto API's "crc32c" at a priority above crc32c-generic's.
 *
 * Every crc32c our filesystems compute goes through the crypto API in 6.12:
 * ext4 (metadata_csum), jbd2 (journal checksums) and btrfs allocate
 * "crc32c" at mount; xfs, erofs and btrfs's name hashes call crc32c() of
 * lib/libcrc32c.c, whose one transform is allocated at device_initcall,
 * after this file registers (subsys_initcall, and arch/ links before
 * crypto/). Nothing we build calls the library's __crc32c_le() except
 * crc32c-generic itself. The generic table-driven code took about a tenth
 * of cptofs's CPU: bitmaps, directory blocks and journal blocks are
 * checksummed whole (4 KiB) each time they change.
 *
 * Registered only when cpuid reports SSE4.2 (crc32c-generic serves
 * otherwise). With PCLMULQDQ as well, long buffers go as three streams at
 * once (the instruction takes three cycles but starts one every cycle),
 * joined by carry-less multiplies.
 *
 * "lkl_crc32c_check" on the command line compares this driver with
 * crc32c-generic once booted, over many lengths, alignments and seeds, and
 * logs the outcome (the kernel library's tests use it).
 */
#include <crypto/internal/hash.h>
#include <linux/crc32.h>
#include <linux/crc32poly.h>
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/unaligned.h>

#define DRIVER_NAME	"crc32c-sse42"

#define SSE42		__attribute__((target("sse4.2")))
#define SSE42_CLMUL	__attribute__((target("sse4.2,pclmul")))

/* Bytes per stream in one round of three streams, long and short rounds. */
#define LONG_STREAM	512
#define SHORT_STREAM	64

/*
 * Constants that move a stream's crc over the one or two streams after it:
 * x^(8 * n - 33) mod P for n = one and two stream lengths (see clmul()).
 */
static u32 long_k1, long_k2, short_k1, short_k2;
static bool use_clmul;

static SSE42 u32 crc32c_serial(u32 crc, const u8 *p, size_t len)
{
	u64 c = crc;

	for (; len >= 8; p += 8, len -= 8)
		c = __builtin_ia32_crc32di(c, get_unaligned((const u64 *)p));
	crc = c;
	if (len & 4) {
		crc = __builtin_ia32_crc32si(crc, get_unaligned((const u32 *)p));
		p += 4;
	}
	if (len & 2) {
		crc = __builtin_ia32_crc32hi(crc, get_unaligned((const u16 *)p));
		p += 2;
	}
	if (len & 1)
		crc = __builtin_ia32_crc32qi(crc, *p);
	return crc;
}

typedef long long v2di __attribute__((vector_size(16)));

/*
 * The carry-less product of two bit-reflected 32-bit polynomials is their
 * product times x as a 64-bit reflected message, and the crc32 instruction
 * on a message of 8 bytes from a zero state multiplies it by x^32 mod P:
 * so crc32(0, clmul(a, x^(e - 33))) = a * x^e mod P, the state a moved
 * over e bits of zeros.
 */
static __always_inline SSE42_CLMUL u64 clmul(u32 a, u32 k)
{
	v2di va = { a, 0 }, vk = { k, 0 };

	return __builtin_ia32_pclmulqdq128(va, vk, 0x00)[0];
}

/*
 * One round over 3 * n bytes: three streams of n bytes, the first from crc,
 * the others from zero, then crc(A B C) = crc(A) * x^(16n) + crc(B) * x^(8n)
 * + crc(C), the CRC (without its inversions) being linear.
 */
static __always_inline SSE42_CLMUL u32 join3(u32 crc, const u8 *p, size_t n,
					      u32 k1, u32 k2)
{
	u64 a = crc, b = 0, c = 0;
	size_t i;

	for (i = 0; i < n; i += 8) {
		a = __builtin_ia32_crc32di(a, get_unaligned((const u64 *)(p + i)));
		b = __builtin_ia32_crc32di(b, get_unaligned((const u64 *)(p + n + i)));
		c = __builtin_ia32_crc32di(c, get_unaligned((const u64 *)(p + 2 * n + i)));
	}
	return __builtin_ia32_crc32di(0, clmul(a, k2) ^ clmul(b, k1)) ^ c;
}

static SSE42_CLMUL u32 crc32c_clmul(u32 crc, const u8 *p, size_t len)
{
	for (; len >= 3 * LONG_STREAM; p += 3 * LONG_STREAM, len -= 3 * LONG_STREAM)
		crc = join3(crc, p, LONG_STREAM, long_k1, long_k2);
	for (; len >= 3 * SHORT_STREAM; p += 3 * SHORT_STREAM, len -= 3 * SHORT_STREAM)
		crc = join3(crc, p, SHORT_STREAM, short_k1, short_k2);
	return crc32c_serial(crc, p, len);
}

static u32 crc32c_sse42(u32 crc, const u8 *p, size_t len)
{
	return use_clmul ? crc32c_clmul(crc, p, len) : crc32c_serial(crc, p, len);
}

/* cpuid leaf 1's feature bits in ecx (the kernel has no <cpuid.h>). */
#define CPUID1_ECX_PCLMULQDQ	BIT(1)
#define CPUID1_ECX_SSE4_2	BIT(20)

static u32 __init cpuid1_ecx(void)
{
	u32 eax = 1, ebx, ecx = 0, edx;

	asm volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
	return ecx;
}

/* x^e mod P, bit-reflected as the crc32 instruction keeps its state. */
static u32 __init xpow(unsigned int e)
{
	u32 v = 0x80000000;	/* x^0 */

	while (e--)
		v = (v >> 1) ^ (v & 1 ? CRC32C_POLY_LE : 0);
	return v;
}

/* The crypto API's face, as crc32c-generic's: the key is the seed (~0). */
struct crc32c_key {
	u32 seed;
};

struct crc32c_state {
	u32 crc;
};

static int crc32c_cra_init(struct crypto_tfm *tfm)
{
	struct crc32c_key *key = crypto_tfm_ctx(tfm);

	key->seed = ~0;
	return 0;
}

static int crc32c_setkey(struct crypto_shash *tfm, const u8 *seed,
			 unsigned int len)
{
	struct crc32c_key *key = crypto_shash_ctx(tfm);

	if (len != sizeof(key->seed))
		return -EINVAL;
	key->seed = get_unaligned_le32(seed);
	return 0;
}

static int crc32c_init(struct shash_desc *desc)
{
	struct crc32c_key *key = crypto_shash_ctx(desc->tfm);
	struct crc32c_state *state = shash_desc_ctx(desc);

	state->crc = key->seed;
	return 0;
}

static int crc32c_update(struct shash_desc *desc, const u8 *data,
			 unsigned int len)
{
	struct crc32c_state *state = shash_desc_ctx(desc);

	state->crc = crc32c_sse42(state->crc, data, len);
	return 0;
}

static int crc32c_final(struct shash_desc *desc, u8 *out)
{
	struct crc32c_state *state = shash_desc_ctx(desc);

	put_unaligned_le32(~state->crc, out);
	return 0;
}

static int crc32c_finup(struct shash_desc *desc, const u8 *data,
			unsigned int len, u8 *out)
{
	struct crc32c_state *state = shash_desc_ctx(desc);

	put_unaligned_le32(~crc32c_sse42(state->crc, data, len), out);
	return 0;
}

static int crc32c_digest(struct shash_desc *desc, const u8 *data,
			 unsigned int len, u8 *out)
{
	struct crc32c_key *key = crypto_shash_ctx(desc->tfm);

	put_unaligned_le32(~crc32c_sse42(key->seed, data, len), out);
	return 0;
}

static struct shash_alg crc32c_alg = {
	.digestsize	= sizeof(u32),
	.setkey		= crc32c_setkey,
	.init		= crc32c_init,
	.update		= crc32c_update,
	.final		= crc32c_final,
	.finup		= crc32c_finup,
	.digest		= crc32c_digest,
	/* ext4 and libcrc32c keep the running crc as the whole descriptor. */
	.descsize	= sizeof(struct crc32c_state),
	.base		= {
		.cra_name	 = "crc32c",
		.cra_driver_name = DRIVER_NAME,
		.cra_priority	 = 200,
		.cra_flags	 = CRYPTO_ALG_OPTIONAL_KEY,
		.cra_blocksize	 = 1,
		.cra_ctxsize	 = sizeof(struct crc32c_key),
		.cra_module	 = THIS_MODULE,
		.cra_init	 = crc32c_cra_init,
	},
};

static bool registered __initdata;

static int __init crc32c_sse42_register(void)
{
	u32 ecx = cpuid1_ecx();
	int ret;

	if (!(ecx & CPUID1_ECX_SSE4_2))
		return -ENODEV;
	if (ecx & CPUID1_ECX_PCLMULQDQ) {
		long_k1 = xpow(8 * LONG_STREAM - 33);
		long_k2 = xpow(16 * LONG_STREAM - 33);
		short_k1 = xpow(8 * SHORT_STREAM - 33);
		short_k2 = xpow(16 * SHORT_STREAM - 33);
		use_clmul = true;
	}
	ret = crypto_register_shash(&crc32c_alg);
	registered = !ret;
	return ret;
}
subsys_initcall(crc32c_sse42_register);

static bool check_requested __initdata;

static int __init parse_check(char *arg)
{
	check_requested = true;
	return 0;
}
early_param("lkl_crc32c_check", parse_check);

#define CHECK_ALL_LENGTHS	1024
#define CHECK_ALIGNMENTS	16

/* Lengths past CHECK_ALL_LENGTHS: around pages and round boundaries. */
static const unsigned int check_long_lengths[] __initconst = {
	3 * LONG_STREAM - 1, 3 * LONG_STREAM, 3 * LONG_STREAM + 3 * SHORT_STREAM + 7,
	4095, 4096, 4097, 3 * 4096 + 5, 65536 + 13,
};

/*
 * One case, len bytes at buf + off with the given seed: the digest, the
 * same bytes fed as three updates cut at arbitrary points and as one, by
 * both drivers; and the one-stream code a CPU without PCLMULQDQ runs
 * against the generic library function.
 */
static bool __init check_case(struct shash_desc *ours, struct shash_desc *generic,
			      const u8 *buf, unsigned int off, unsigned int len,
			      u32 seed)
{
	const u8 *p = buf + off;
	unsigned int cut1 = len / 3, cut2 = len - len / 5;
	u8 key[4], a[4], b[4], c[4], d[4];
	u32 serial, base;

	put_unaligned_le32(seed, key);
	if (crypto_shash_setkey(ours->tfm, key, sizeof(key)) ||
	    crypto_shash_setkey(generic->tfm, key, sizeof(key)) ||
	    crypto_shash_digest(ours, p, len, a) ||
	    crypto_shash_digest(generic, p, len, b) ||
	    crypto_shash_init(ours) ||
	    crypto_shash_update(ours, p, cut1) ||
	    crypto_shash_update(ours, p + cut1, cut2 - cut1) ||
	    crypto_shash_finup(ours, p + cut2, len - cut2, c) ||
	    crypto_shash_init(ours) ||
	    crypto_shash_update(ours, p, len) ||
	    crypto_shash_final(ours, d)) {
		pr_err(DRIVER_NAME ": check: a crypto call failed at length %u\n", len);
		return false;
	}
	serial = crc32c_serial(seed, p, len);
	base = __crc32c_le_base(seed, p, len);
	if (!memcmp(a, b, 4) && !memcmp(c, b, 4) && !memcmp(d, b, 4) &&
	    serial == base)
		return true;
	pr_err(DRIVER_NAME ": differs from crc32c-generic: length %u at offset %u, seed %08x: digest %08x, updates %08x %08x, one stream %08x; generic %08x, %08x\n",
	       len, off, seed, get_unaligned_le32(a), get_unaligned_le32(c),
	       get_unaligned_le32(d), serial, get_unaligned_le32(b), base);
	return false;
}

static int __init crc32c_sse42_check(void)
{
	const u32 seeds[] = { ~0U, 0, 1, get_random_u32() };
	struct crypto_shash *ours_tfm, *generic_tfm = NULL;
	struct shash_desc *ours = NULL, *generic = NULL;
	unsigned int len, off, s, i, cases = 0;
	u8 *buf = NULL;
	bool ok = true;

	if (!check_requested)
		return 0;
	if (!registered) {
		pr_info(DRIVER_NAME ": not registered (no SSE4.2): nothing to check\n");
		return 0;
	}
	ours_tfm = crypto_alloc_shash(DRIVER_NAME, 0, 0);
	if (IS_ERR(ours_tfm)) {
		pr_err(DRIVER_NAME ": check: cannot allocate: %ld\n", PTR_ERR(ours_tfm));
		return 0;
	}
	generic_tfm = crypto_alloc_shash("crc32c-generic", 0, 0);
	if (IS_ERR(generic_tfm)) {
		pr_err(DRIVER_NAME ": check: no crc32c-generic: %ld\n", PTR_ERR(generic_tfm));
		generic_tfm = NULL;
		goto out;
	}
	ours = kmalloc(sizeof(*ours) + sizeof(struct crc32c_state), GFP_KERNEL);
	generic = kmalloc(sizeof(*generic) + crypto_shash_descsize(generic_tfm), GFP_KERNEL);
	buf = kmalloc(65536 + 13 + CHECK_ALIGNMENTS, GFP_KERNEL);
	if (!ours || !generic || !buf) {
		pr_err(DRIVER_NAME ": check: out of memory\n");
		goto out;
	}
	ours->tfm = ours_tfm;
	generic->tfm = generic_tfm;
	get_random_bytes(buf, 65536 + 13 + CHECK_ALIGNMENTS);

	for (s = 0; s < ARRAY_SIZE(seeds); s++) {
		for (off = 0; off < CHECK_ALIGNMENTS; off++) {
			for (len = 0; len <= CHECK_ALL_LENGTHS && ok; len++, cases++)
				ok = check_case(ours, generic, buf, off, len, seeds[s]);
			for (i = 0; i < ARRAY_SIZE(check_long_lengths) && ok; i++, cases++)
				ok = check_case(ours, generic, buf, off,
						check_long_lengths[i], seeds[s]);
		}
	}
	if (ok)
		pr_info(DRIVER_NAME ": agrees with crc32c-generic in %u cases (%s)\n",
			cases, use_clmul ? "three streams" : "one stream");
	else
		pr_err(DRIVER_NAME ": check failed after %u cases\n", cases);
out:
	kfree(buf);
	kfree(generic);
	kfree(ours);
	if (generic_tfm)
		crypto_free_shash(generic_tfm);
	crypto_free_shash(ours_tfm);
	return 0;
}
late_initcall(crc32c_sse42_check);
