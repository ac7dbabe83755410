#!/usr/bin/python3
"""Corpora for benches/read_speed.sh: pcapng files of COUNT packets each.

  mix.pcapng     the decoder test's generated packets (every family it
                 knows, tunnels and DNS included), repeated
  tcp.pcapng     bulk TCP: 16 conversations of 1448-byte segments and ACKs
                 (tcpdump and netcap both keep relative sequence numbers)
  netcap.pcapng  the mix with netcap's per-packet comments (trace point,
                 device, skb, task, a drop on some), as `netcap skb -w`
                 writes them, one interface per trace point

Usage: benches/read_corpus.py DIR [COUNT]
"""

import os
import struct
import subprocess
import sys

from scapy.all import IP, TCP, Ether, rdpcap

out, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
here = os.path.dirname(os.path.abspath(__file__))


def block(kind, body):
    body += b"\0" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


def option(code, value):
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def section(application):
    body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + option(4, application) + b"\0" * 4
    return block(0x0A0D0D0A, body)


def interface(name):
    return block(1, struct.pack("<HHI", 1, 0, 0) + option(2, name) + option(9, b"\x09") + b"\0" * 4)


def packet(interface_id, ns, data, comment=None):
    body = struct.pack("<IIIII", interface_id, ns >> 32, ns & 0xFFFFFFFF, len(data), len(data)) + data
    body += b"\0" * (-len(data) % 4)
    if comment:
        body += option(1, comment) + b"\0" * 4
    return block(6, body)


cases = os.path.join(out, "cases.pcap")
subprocess.run(["/usr/bin/python3", os.path.join(here, "..", "tests", "host", "decoder_cases.py"), cases,
                os.path.join(out, "families.txt")], check=True)
mix = [bytes(p) for p in rdpcap(cases)]
start = 1_790_000_000 * 10**9

with open(os.path.join(out, "mix.pcapng"), "wb") as f:
    f.write(section(b"read_corpus.py") + interface(b"eth0"))
    for n in range(count):
        f.write(packet(0, start + n * 1000, mix[n % len(mix)]))

with open(os.path.join(out, "tcp.pcapng"), "wb") as f:
    f.write(section(b"read_corpus.py") + interface(b"eth0"))
    # Each flow's data segment and ACK built once; sequence numbers patched
    # in place (tcpdump -nn checks no checksum).
    flows = []
    for c in range(16):
        a, b = "198.18.0.%d" % (c + 1), "198.19.0.%d" % (c + 1)
        data = bytearray(bytes(Ether() / IP(src=a, dst=b) / TCP(sport=40000 + c, dport=443, flags="PA") / (b"x" * 1448)))
        ack = bytearray(bytes(Ether() / IP(src=b, dst=a) / TCP(sport=443, dport=40000 + c, flags="A")))
        flows.append([data, ack, 1000 * c, 5000 * c])
    seq_at = 14 + 20 + 4
    for n in range(count):
        flow = flows[n % 16]
        if n % 3 == 2:
            frame = flow[1]
            struct.pack_into(">II", frame, seq_at, flow[3], flow[2])
        else:
            frame = flow[0]
            struct.pack_into(">II", frame, seq_at, flow[2], flow[3])
            flow[2] = (flow[2] + 1448) & 0xFFFFFFFF
        f.write(packet(0, start + n * 1000, bytes(frame)))

points = [b"net_dev_queue", b"netif_receive_skb", b"kfree_skb"]
with open(os.path.join(out, "netcap.pcapng"), "wb") as f:
    f.write(section(b"netcap bench") + b"".join(interface(p) for p in points))
    for n in range(count):
        point = n % 3
        comment = "point=%s dev=veth%d ifindex=%d skb=0xffff8881%08x cpu=%d pid=%d comm=ping len=%d" % (
            points[point].decode(), n % 4, 2 + n % 4, (n // 3) * 256, n % 2, 1000 + n % 7, len(mix[n % len(mix)]))
        if point == 2 and n % 2:
            comment += " drop=NETFILTER_DROP location=nft_do_chain+0x3e8"
        f.write(packet(point, start + n * 1000, mix[(n // 3) % len(mix)], comment.encode()))
