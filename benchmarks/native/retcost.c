// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/*
 * What a return and an indirect jump cost on this CPU, with and without the
 * code sequences this kernel's mitigations put in JITed BPF code (x86-64 only):
 *
 *   plain_call     call f; f: ret
 *   thunk_call     call f; f: jmp thunk; thunk: call safe; safe: lea 8(%rsp),%rsp; ret
 *                  -- the shape of srso_alias_return_thunk (SRSO "Safe RET"): the
 *                  return goes to an address the return predictor did not expect
 *   plain_jmp      jmp *%rcx
 *   retpoline_jmp  jmp through a generic retpoline (__x86_indirect_thunk_rcx)
 *
 * Each loop runs N times; the empty loop's time is subtracted. Prints
 * "name ns" lines, the minimum over 7 rounds.
 */
#include <stdio.h>
#include <time.h>

#if defined(__x86_64__)
__asm__(
	".text\n"
	"rc_plain_fn: ret\n"
	"rc_safe_ret: lea 8(%rsp), %rsp\n ret\n int3\n"
	"rc_ret_thunk: call rc_safe_ret\n ud2\n"
	"rc_thunk_fn: jmp rc_ret_thunk\n"
	"rc_retpoline_rcx: call 1f\n 2: pause\n lfence\n jmp 2b\n 1: mov %rcx, (%rsp)\n ret\n"
	".globl rc_loop_empty\n rc_loop_empty: 1: dec %rdi\n jnz 1b\n ret\n"
	".globl rc_loop_plain_call\n rc_loop_plain_call: 1: call rc_plain_fn\n dec %rdi\n jnz 1b\n ret\n"
	".globl rc_loop_thunk_call\n rc_loop_thunk_call: 1: call rc_thunk_fn\n dec %rdi\n jnz 1b\n ret\n"
	".globl rc_loop_plain_jmp\n rc_loop_plain_jmp: lea 3f(%rip), %rcx\n 1: jmp *%rcx\n 3: dec %rdi\n jnz 1b\n ret\n"
	".globl rc_loop_retpoline_jmp\n rc_loop_retpoline_jmp: lea 3f(%rip), %rcx\n 1: jmp rc_retpoline_rcx\n 3: dec %rdi\n jnz 1b\n ret\n");

void rc_loop_empty(long n);
void rc_loop_plain_call(long n);
void rc_loop_thunk_call(long n);
void rc_loop_plain_jmp(long n);
void rc_loop_retpoline_jmp(long n);

static double per_iter(void (*fn)(long), long n)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	fn(n);
	clock_gettime(CLOCK_MONOTONIC, &b);
	return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
}

int main(void)
{
	static const struct {
		const char *name;
		void (*fn)(long);
	} loops[] = {
		{ "plain_call", rc_loop_plain_call },
		{ "thunk_call", rc_loop_thunk_call },
		{ "plain_jmp", rc_loop_plain_jmp },
		{ "retpoline_jmp", rc_loop_retpoline_jmp },
	};
	const long n = 5000000;
	double best[4], empty = 1e9;
	int r, i;

	for (i = 0; i < 4; i++)
		best[i] = 1e9;
	for (r = 0; r < 7; r++) {
		double e = per_iter(rc_loop_empty, n);

		if (e < empty)
			empty = e;
		for (i = 0; i < 4; i++) {
			double t = per_iter(loops[i].fn, n);

			if (t < best[i])
				best[i] = t;
		}
	}
	for (i = 0; i < 4; i++)
		printf("%s %.2f\n", loops[i].name, best[i] - empty);
	return 0;
}
#else
int main(void)
{
	fprintf(stderr, "retcost: x86-64 only\n");
	return 3;
}
#endif
