/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Why a packet went where it went: reasons below 128 forward, the others drop,
 * and the helpers return the negative of a drop reason, errno style. */
#ifndef CORPUS_LIB_DROP_H
#define CORPUS_LIB_DROP_H

enum metric_dir {
	METRIC_INGRESS = 1,
	METRIC_EGRESS = 2,
};

#define REASON_FORWARDED	0
#define REASON_NOT_UDP		1	/* forwarded, nothing to decide */
#define DROP_INVALID		130	/* too short to parse */
#define DROP_POLICY_DENIED	133	/* a setting denies it */

#define IS_ERR(RET)		((RET) < 0)

#endif
