// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * netcap's kernel half, one object. Each trace point's program finds the
 * packet, applies the device filter and the -e filter, and emits one ring
 * buffer record: a small header, the sections the point's features add,
 * and up to capture_max packet bytes (paged data included where the kernel
 * allows it).
 *
 * User space opens this object once per trace point, sets netcap_cfg and
 * leaves only the program of the chosen flavour to load; maps are shared
 * between all the opened objects.
 *
 * The pieces, by concern (each header is one of them; a new feature adds
 * its own header here and a section kind in netcap.h):
 *   lib/scratch.h   the scratch slot's layout and the user struct's size
 *   lib/maps.h      configuration, ring buffer, slots, stacks, counters
 *   lib/counters.h  counting what is lost or skipped
 *   lib/read.h      reading the skb: plain loads or CO-RE, dynptr reads
 *   lib/vlan.h      the 802.1Q tag a driver moved out, put back
 *   lib/fake_hdr.h  --fake-hdr
 *   lib/locate.h    where the packet is and how much to take
 *   lib/filter.h    the -e filter stubs, on a copy and in place
 *   lib/ct.h        --ct: the skb's conntrack entry
 *   lib/sections.h  a record's optional sections: stack, drop, return
 *                   value, extra argument, the user's struct
 *   lib/record.h    slots, common fields, wakeups, submit, size classes
 *   lib/ext.h       whether a copied packet is wanted (-e, --ext-*)
 *   lib/args.h      a trace point's arguments
 *   lib/track.h     --track: following skbs, and the skbs made from them
 *   entry/skb.h     kernel skb points: every attach flavour
 *   entry/user.h    user-space packets: uprobes and USDT
 *   entry/prog.h    BPF programs at tc and XDP: fentry/fexit on them
 *   entry/nft.h     --nft: the verdict of each nftables base chain
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include <bpf/usdt.bpf.h>
#include "netcap.h"

/* With --ext-filter/--ext-action netcap compiles this file at run time,
 * defining NETCAP_EXT and generating netcap_ext.h around the user's code. */
#ifdef NETCAP_EXT
#include "netcap_ext.h"
#endif

#include "lib/scratch.h"
#include "lib/maps.h"
#include "lib/counters.h"
#include "lib/read.h"
#include "lib/vlan.h"
#include "lib/fake_hdr.h"
#include "lib/locate.h"
#include "lib/filter.h"
#include "lib/ct.h"
#include "lib/sections.h"
#include "lib/record.h"
#include "lib/ext.h"
#include "lib/args.h"
#include "lib/track.h"
#include "entry/skb.h"
#include "entry/user.h"
#include "entry/prog.h"
#include "entry/nft.h"
