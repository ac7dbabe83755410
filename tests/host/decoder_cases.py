#!/usr/bin/python3
"""Packets for the decoder's differential test (tests/host/decoder.rs).

Writes a pcap of generated packets to argv[1] and, to argv[2], one line per
packet naming its family, so the test can say where netcap and tcpdump
differ. Deterministic (a fixed seed). Nothing is sent anywhere: the packets
only go into the file. tcpdump, run by the test, is the oracle of what each
should print; nothing here says what that is.
"""

import random
import sys

from scapy.all import (AH, ARP, BOOTP, DHCP, DNS, DNSQR, DNSRR, ESP, GRE, ICMP, IP, LLC, NTP, SCTP,
                       SNAP, STP, TCP, UDP, VXLAN, Dot1AD, Dot1Q, Dot3, Ether, ICMPv6DestUnreach,
                       ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6MLDone, ICMPv6MLQuery,
                       ICMPv6MLReport, ICMPv6MLReport2, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA,
                       ICMPv6ND_RS, ICMPv6ND_Redirect, ICMPv6PacketTooBig, ICMPv6ParamProblem,
                       ICMPv6TimeExceeded, ICMPv6Unknown, IPv6, IPv6ExtHdrDestOpt,
                       IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                       IPv6ExtHdrSegmentRouting, Raw, conf, wrpcap)
from scapy.contrib.igmp import IGMP
from scapy.contrib.igmpv3 import IGMPv3, IGMPv3gr, IGMPv3mr, IGMPv3mq

conf.verb = 0
rng = random.Random(19)
cases = []


def add(family, packet):
    cases.append((family, packet))


def mac():
    return "02:%02x:%02x:%02x:%02x:%02x" % tuple(rng.randrange(256) for _ in range(5))


def eth(**kw):
    return Ether(src=mac(), dst=mac(), **kw)


def v4():
    return "198.%d.%d.%d" % (rng.choice((18, 19)), rng.randrange(256), rng.randrange(1, 255))


def v6():
    return "fd00:%x::%x:%x" % (rng.randrange(1, 0xffff), rng.randrange(0xffff), rng.randrange(1, 0xffff))


def port():
    # Ephemeral ports: clear of the ones tcpdump decodes by number.
    return rng.randrange(31000, 60000)


def payload(most=200):
    return bytes(rng.randrange(256) for _ in range(rng.randrange(most)))


# ARP
for _ in range(12):
    add("arp", eth() / ARP(op=rng.choice((1, 2)), hwsrc=mac(), psrc=v4(), pdst=v4()))
add("arp", eth() / ARP(op=3, psrc=v4(), pdst=v4()))
add("arp", eth() / ARP(op=4, psrc=v4(), pdst=v4()))

# ICMP
for _ in range(8):
    add("icmp", eth() / IP(src=v4(), dst=v4(), id=rng.randrange(65536)) /
        ICMP(type=rng.choice((0, 8)), id=rng.randrange(65536), seq=rng.randrange(65536)) / payload(100))
for code in (0, 1, 2, 3, 4, 5, 9, 10, 13):
    inner = IP(src=v4(), dst=v4()) / rng.choice((UDP(sport=port(), dport=port()), TCP(sport=port(), dport=port())))
    add("icmp", eth() / IP(src=v4(), dst=v4()) / ICMP(type=3, code=code) / inner)
for code in (0, 1):
    add("icmp", eth() / IP(src=v4(), dst=v4()) / ICMP(type=11, code=code) / IP(src=v4(), dst=v4()) / UDP())
for code in (0, 1):
    add("icmp", eth() / IP(src=v4(), dst=v4()) / ICMP(type=5, code=code, gw=v4()) / IP(src=v4(), dst=v4()) / UDP())
for kind in (4, 9, 10, 12, 13, 14, 15, 16, 17, 18, 42, 200):
    add("icmp", eth() / IP(src=v4(), dst=v4()) / ICMP(type=kind, id=rng.randrange(65536), seq=rng.randrange(65536)))

# TCP: conversations (relative numbers), flags, options
for _ in range(6):
    a, b, pa, pb = v4(), v4(), port(), port()
    sa, sb = rng.randrange(1 << 32), rng.randrange(1 << 32)
    add("tcp", eth() / IP(src=a, dst=b) / TCP(sport=pa, dport=pb, flags="S", seq=sa,
        options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (rng.randrange(1 << 32), 0)), ("NOP", None), ("WScale", 7)]))
    add("tcp", eth() / IP(src=b, dst=a) / TCP(sport=pb, dport=pa, flags="SA", seq=sb, ack=sa + 1,
        options=[("MSS", 1400), ("NOP", None), ("WScale", 3)]))
    add("tcp", eth() / IP(src=a, dst=b) / TCP(sport=pa, dport=pb, flags="A", seq=sa + 1, ack=sb + 1))
    data = payload(300)
    add("tcp", eth() / IP(src=a, dst=b) / TCP(sport=pa, dport=pb, flags="PA", seq=sa + 1, ack=sb + 1) / data)
    add("tcp", eth() / IP(src=b, dst=a) / TCP(sport=pb, dport=pa, flags="A", seq=sb + 1, ack=sa + 1 + len(data),
        options=[("NOP", None), ("NOP", None), ("SAck", (sa + 100, sa + 200))]))
    add("tcp", eth() / IP(src=a, dst=b) / TCP(sport=pa, dport=pb, flags="FA", seq=sa + 1 + len(data), ack=sb + 1))
    add("tcp", eth() / IP(src=b, dst=a) / TCP(sport=pb, dport=pa, flags="R", seq=sb + 1))
for flags in ("", "U", "E", "C", "SEC", "FPU", "RA", "SRPAUEC"):
    add("tcp", eth() / IP(src=v4(), dst=v4()) / TCP(sport=port(), dport=port(), flags=flags, urgptr=rng.randrange(100),
        seq=rng.randrange(1 << 32), ack=rng.randrange(1 << 32)))
for _ in range(4):
    add("tcp6", eth() / IPv6(src=v6(), dst=v6()) / TCP(sport=port(), dport=port(), flags=rng.choice(("S", "A", "PA")),
        seq=rng.randrange(1 << 32), ack=rng.randrange(1 << 32)) / payload(60))

# TCP options tcpdump decodes (Multipath TCP, Fast Open) and what it names by port
for option in (bytes([0x00, 0x81]) + bytes(rng.randrange(256) for _ in range(8)),  # capable v1, SYN
               bytes([0x20, 0x01]) + bytes(rng.randrange(256) for _ in range(12)),  # dss ack+seq
               bytes([0x20, 0x01]) + bytes(rng.randrange(256) for _ in range(4)),  # dss ack
               bytes([0x30, 0x02, 198, 18, 0, 7]),  # add-addr v0
               bytes([0x40, 0x03]),  # remove-addr
               bytes([0x50, 0x04]),  # prio
               bytes([0x70, 0x00]) + bytes(8),  # fast-close
               bytes([0x20, 0x01, 0x01])):  # a dss whose length fits no form
    flags = "S" if option[0] == 0x00 else "A"
    add("tcpopt", eth() / IP(src=v4(), dst=v4()) / TCP(sport=port(), dport=port(), flags=flags, seq=rng.randrange(1 << 32),
        options=[(30, option)]))
add("tcpopt", eth() / IP(src=v4(), dst=v4()) / TCP(sport=port(), dport=port(), flags="S", options=[("MSS", 1460), (34, b"")]))
add("tcpopt", eth() / IP(src=v4(), dst=v4()) / TCP(sport=port(), dport=port(), flags="S", options=[(34, bytes(range(8)))]))
add("tcpopt", eth() / IP(src=v4(), dst=v4()) / TCP(sport=port(), dport=port(), flags="S", options=[(254, b"\xf9\x89" + bytes(6))]))
for sport, dport, data in ((port(), 179, b"\xff" * 16 + b"\x00\x13\x04"),
                           (22, port(), b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
                           (port(), 22, b"\x00\x00\x01\x0c\x0a\x14"),
                           (port(), 80, b"GET /index.html HTTP/1.1\r\nHost: 198.18.0.2\r\nUser-Agent: curl/7.88.1\r\n\r\n"),
                           (80, port(), b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world\n"),
                           (8080, port(), b"x" * 200),
                           (port(), 8080, b"post /form HTTP/1.0\n"),
                           (port(), 53, len(bytes(DNS(id=5, qd=DNSQR(qname="tcp.example.net")))).to_bytes(2, "big") +
                            bytes(DNS(id=5, qd=DNSQR(qname="tcp.example.net"))))):
    add("tcpapp", eth() / IP(src=v4(), dst=v4()) / TCP(sport=sport, dport=dport, flags="PA", seq=rng.randrange(1 << 32),
        ack=rng.randrange(1 << 32)) / Raw(data))

# UDP
for _ in range(10):
    add("udp", eth() / IP(src=v4(), dst=v4()) / UDP(sport=port(), dport=port()) / payload())
for _ in range(4):
    add("udp6", eth() / IPv6(src=v6(), dst=v6()) / UDP(sport=port(), dport=port()) / payload())
add("udp", eth() / IP(src=v4(), dst=v4()) / UDP(sport=port(), dport=port(), len=4) / payload(20))
add("udp", eth() / IP(src=v4(), dst=v4()) / UDP(sport=port(), dport=port(), len=300) / Raw(b"x" * 20))

# IPv4 fragments
for _ in range(4):
    src, dst, ident = v4(), v4(), rng.randrange(65536)
    add("frag", eth() / IP(src=src, dst=dst, id=ident, flags="MF") / UDP(sport=port(), dport=port(), len=1208) / (b"x" * 100))
    add("frag", eth() / IP(src=src, dst=dst, id=ident, frag=rng.randrange(1, 200), proto=rng.choice((1, 6, 17))) / (b"y" * 40))

# IPv6 extension headers
for _ in range(3):
    add("ip6ext", eth() / IPv6(src=v6(), dst=v6()) / IPv6ExtHdrHopByHop() / ICMPv6EchoRequest(id=rng.randrange(65536)))
    add("ip6ext", eth() / IPv6(src=v6(), dst=v6()) / IPv6ExtHdrDestOpt() / UDP(sport=port(), dport=port()) / payload(40))
    add("ip6ext", eth() / IPv6(src=v6(), dst=v6()) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() /
        TCP(sport=port(), dport=port(), flags="S", seq=rng.randrange(1 << 32)))
    add("ip6ext", eth() / IPv6(src=v6(), dst=v6()) / IPv6ExtHdrRouting(addresses=[v6() for _ in range(rng.randrange(1, 4))]) /
        UDP(sport=port(), dport=port()))
    ident = rng.randrange(1 << 32)
    add("ip6ext", eth() / IPv6(src=v6(), dst=v6()) / IPv6ExtHdrFragment(id=ident, m=1) / UDP(sport=port(), dport=port()) / (b"z" * 80))
    add("ip6ext", eth() / IPv6(src=v6(), dst=v6()) / IPv6ExtHdrFragment(id=ident, offset=rng.randrange(1, 100), nh=17) / (b"z" * 40))
    add("ip6ext", eth() / IPv6(src=v6(), dst=v6(), nh=59))

# ICMPv6
for _ in range(4):
    add("icmp6", eth() / IPv6(src=v6(), dst=v6()) / rng.choice((ICMPv6EchoRequest, ICMPv6EchoReply))(
        id=rng.randrange(65536), seq=rng.randrange(65536)) / payload(60))
for code in (0, 1, 2, 3, 4, 5):
    add("icmp6", eth() / IPv6(src=v6(), dst=v6()) / ICMPv6DestUnreach(code=code) /
        IPv6(src=v6(), dst=v6()) / rng.choice((UDP(sport=port(), dport=port()), TCP(sport=port(), dport=port()))))
add("icmp6", eth() / IPv6(src=v6(), dst=v6()) / ICMPv6PacketTooBig(mtu=rng.randrange(1280, 9000)) / IPv6(src=v6(), dst=v6()))
for code in (0, 1):
    add("icmp6", eth() / IPv6(src=v6(), dst=v6()) / ICMPv6TimeExceeded(code=code) / IPv6(src=v6(), dst=v6()) / UDP())
for code in (0, 1, 2, 3):
    add("icmp6", eth() / IPv6(src=v6(), dst=v6()) / ICMPv6ParamProblem(code=code, ptr=rng.randrange(60)) / IPv6(src=v6(), dst=v6()))
add("icmp6", eth() / IPv6(src=v6(), dst="ff02::2") / ICMPv6ND_RS())
add("icmp6", eth() / IPv6(src=v6(), dst="ff02::1") / ICMPv6ND_RA())
for _ in range(3):
    add("icmp6", eth() / IPv6(src=v6(), dst=v6()) / ICMPv6ND_NS(tgt=v6()))
    add("icmp6", eth() / IPv6(src=v6(), dst=v6()) / ICMPv6ND_NA(tgt=v6()))
add("icmp6", eth() / IPv6(src=v6(), dst=v6()) / ICMPv6ND_Redirect(tgt=v6(), dst=v6()))
add("icmp6", eth() / IPv6(src=v6(), dst="ff02::1") / ICMPv6MLQuery())
add("icmp6", eth() / IPv6(src=v6(), dst="ff02::1") / ICMPv6MLReport(mladdr="ff02::1:3"))
add("icmp6", eth() / IPv6(src=v6(), dst="ff02::1") / ICMPv6MLDone(mladdr="ff02::1:3"))
add("icmp6", eth() / IPv6(src=v6(), dst="ff02::16") / ICMPv6MLReport2())
for kind in (138, 139, 140, 141, 142, 144, 145, 146, 147, 151, 152, 153, 155, 200, 250):
    add("icmp6", eth() / IPv6(src=v6(), dst=v6()) / ICMPv6Unknown(type=kind, msgbody=payload(24)))

# 802.1Q and QinQ: tcpdump shows no tag without -e
for _ in range(4):
    add("vlan", eth() / Dot1Q(vlan=rng.randrange(1, 4095), prio=rng.randrange(8)) / IP(src=v4(), dst=v4()) / ICMP())
    add("vlan", eth() / Dot1Q(vlan=rng.randrange(1, 4095)) / ARP(psrc=v4(), pdst=v4()))
    add("vlan", eth() / Dot1Q(vlan=rng.randrange(1, 4095)) / IPv6(src=v6(), dst=v6()) / UDP(sport=port(), dport=port()))
    add("qinq", eth() / Dot1AD(vlan=rng.randrange(1, 4095)) / Dot1Q(vlan=rng.randrange(1, 4095)) /
        IP(src=v4(), dst=v4()) / UDP(sport=port(), dport=port()) / payload(30))

# Malformed IP
add("malformed", eth() / IP(src=v4(), dst=v4(), len=10) / ICMP())
add("malformed", eth() / IP(src=v4(), dst=v4(), len=4096) / ICMP())
add("malformed", eth() / IP(src=v4(), dst=v4(), len=200) / UDP(sport=port(), dport=port()))
add("malformed", eth() / IP(src=v4(), dst=v4(), ihl=3) / ICMP())
add("malformed", eth() / IP(src=v4(), dst=v4(), ihl=15) / ICMP())
add("malformed", eth() / IP(src=v4(), dst=v4(), version=5) / ICMP())
add("malformed", eth(type=0x0800) / IPv6(src=v6(), dst=v6()) / ICMPv6EchoRequest())
add("malformed", eth() / IPv6(src=v6(), dst=v6(), version=0) / ICMPv6EchoRequest())
add("malformed", eth() / IPv6(src=v6(), dst=v6(), plen=4000) / ICMPv6EchoRequest())
add("malformed", eth(type=0x0800) / Raw(b"\x45"))
add("malformed", eth(type=0x86dd) / Raw(b"\x60\x00"))

# Tunnels: the outer line, then the inner packet as tcpdump prints it
for dport in (4789, 8472):
    for _ in range(2):
        add("vxlan", eth() / IP(src=v4(), dst=v4()) / UDP(sport=port(), dport=dport) / VXLAN(vni=rng.randrange(1 << 24)) /
            eth() / IP(src=v4(), dst=v4()) / ICMP(id=rng.randrange(65536)))
        add("vxlan", eth() / IPv6(src=v6(), dst=v6()) / UDP(sport=port(), dport=dport) / VXLAN(vni=rng.randrange(1 << 24)) /
            eth() / IP(src=v4(), dst=v4()) / TCP(sport=port(), dport=port(), flags="S"))
for proto, inner in ((0x6558, lambda: eth() / IP(src=v4(), dst=v4()) / ICMP()),
                     (0x0800, lambda: IP(src=v4(), dst=v4()) / UDP(sport=port(), dport=port())),
                     (0x86dd, lambda: IPv6(src=v6(), dst=v6()) / ICMPv6EchoRequest())):
    for options in ("", "\x00\x01\x00\x00" * 0):
        add("geneve", eth() / IP(src=v4(), dst=v4()) / UDP(sport=port(), dport=6081) /
            Raw(bytes([0, 0]) + proto.to_bytes(2, "big") + rng.randrange(1 << 24).to_bytes(3, "big") + b"\x00") / inner())
for proto, inner in ((0x0800, lambda: IP(src=v4(), dst=v4()) / ICMP()),
                     (0x86dd, lambda: IPv6(src=v6(), dst=v6()) / ICMPv6EchoRequest()),
                     (0x6558, lambda: eth() / IP(src=v4(), dst=v4()) / UDP(sport=port(), dport=port()))):
    add("gre", eth() / IP(src=v4(), dst=v4()) / GRE(proto=proto) / inner())
    add("gre", eth() / IP(src=v4(), dst=v4()) / GRE(proto=proto, key_present=1, key=rng.randrange(1 << 32)) / inner())
    add("gre", eth() / IPv6(src=v6(), dst=v6()) / GRE(proto=proto) / inner())
for _ in range(2):
    add("ipip", eth() / IP(src=v4(), dst=v4()) / IP(src=v4(), dst=v4()) / ICMP())
    add("ipip", eth() / IP(src=v4(), dst=v4()) / IPv6(src=v6(), dst=v6()) / UDP(sport=port(), dport=port()))
    add("ipip", eth() / IPv6(src=v6(), dst=v6()) / IPv6(src=v6(), dst=v6()) / ICMPv6EchoRequest())
    add("ipip", eth() / IPv6(src=v6(), dst=v6()) / IP(src=v4(), dst=v4()) / TCP(sport=port(), dport=port()))

# What sits on top
for qtype in ("A", "AAAA", "MX", "PTR", "TXT", "NS", "SRV", "ANY", "SOA", "CNAME"):
    add("dns", eth() / IP(src=v4(), dst=v4()) / UDP(sport=port(), dport=53) /
        DNS(id=rng.randrange(65536), rd=rng.randrange(2), qd=DNSQR(qname="h%d.example.net" % rng.randrange(100), qtype=qtype)))
for rtype, rdata in (("A", "198.18.0.9"), ("AAAA", "fd00::9"), ("CNAME", "alias.example.net"), ("PTR", "host.example.net"),
                     ("NS", "ns1.example.net"), ("MX", "mail.example.net"), ("TXT", "hello world")):
    name = "n%d.example.org" % rng.randrange(100)
    add("dns", eth() / IP(src=v4(), dst=v4()) / UDP(sport=53, dport=port()) /
        DNS(id=rng.randrange(65536), qr=1, aa=rng.randrange(2), ra=rng.randrange(2), qd=DNSQR(qname=name, qtype=rtype),
            an=DNSRR(rrname=name, type=rtype, rdata=rdata) / DNSRR(rrname=name, type=rtype, rdata=rdata)))
add("dns", eth() / IP(src=v4(), dst=v4()) / UDP(sport=53, dport=port()) /
    DNS(id=7, qr=1, rcode=3, qd=DNSQR(qname="missing.example.org")))
add("dns", eth() / IPv6(src=v6(), dst=v6()) / UDP(sport=port(), dport=53) / DNS(id=9, qd=DNSQR(qname="v6.example.org", qtype="AAAA")))
for kind in ("discover", "offer", "request", "ack"):
    add("dhcp", eth() / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67) /
        BOOTP(op=1 if kind in ("discover", "request") else 2, chaddr=bytes.fromhex("02" + "%010x" % rng.randrange(1 << 40)),
              xid=rng.randrange(1 << 32)) / DHCP(options=[("message-type", kind), "end"]))
for mode in (1, 2, 3, 4, 5):
    add("ntp", eth() / IP(src=v4(), dst=v4()) / UDP(sport=123, dport=123) / NTP(mode=mode, version=rng.choice((3, 4)), stratum=rng.randrange(16)))
add("igmp", eth() / IP(src=v4(), dst="224.0.0.1") / IGMP(type=0x11, gaddr="0.0.0.0"))
add("igmp", eth() / IP(src=v4(), dst="224.1.2.3") / IGMP(type=0x16, gaddr="224.1.2.3"))
add("igmp", eth() / IP(src=v4(), dst="224.0.0.2") / IGMP(type=0x17, gaddr="224.1.2.3"))
add("igmp", eth() / IP(src=v4(), dst="224.1.2.3") / IGMP(type=0x12, gaddr="224.1.2.3"))
add("igmp", eth() / IP(src=v4(), dst="224.0.0.22") / IGMPv3() / IGMPv3mr(records=[IGMPv3gr(maddr="224.1.2.3")]))
add("igmp", eth() / IP(src=v4(), dst="224.0.0.1") / IGMPv3() / IGMPv3mq())
add("pim", eth() / IP(src=v4(), dst="224.0.0.13", proto=103) / Raw(b"\x20\x00\x00\x00\x00\x01\x00\x02\x00\x69"))
add("ospf", eth() / IP(src=v4(), dst="224.0.0.5", proto=89) /
    Raw(b"\x02\x01\x00\x2c\xc6\x12\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00" + b"\x00" * 8 + b"\xff\xff\xff\x00\x00\x0a\x02\x01\x00\x00\x00\x28" + b"\x00" * 8))
for vrid in (1, 51):
    add("vrrp", eth() / IP(src=v4(), dst="224.0.0.18", proto=112, ttl=255) /
        Raw(bytes([0x21, vrid, 100, 1, 0, 1, 0, 0]) + bytes([198, 18, 0, vrid])))
add("sctp", eth() / IP(src=v4(), dst=v4()) / SCTP(sport=port(), dport=port()))
add("esp", eth() / IP(src=v4(), dst=v4()) / ESP(spi=rng.randrange(1 << 32), seq=rng.randrange(100)) / payload(40))
add("ah", eth() / IP(src=v4(), dst=v4()) / AH(spi=rng.randrange(1 << 32), seq=rng.randrange(100), icv=b"\x01\x02\x03\x04", nh=1) / ICMP())
add("stp", Ether(src=mac(), dst="01:80:c2:00:00:00") / LLC() / STP())
add("stp", Dot3(src=mac(), dst="01:80:c2:00:00:00") / LLC() / STP(rootmac=mac(), bridgemac=mac(), pathcost=4))
add("lldp", Ether(src=mac(), dst="01:80:c2:00:00:0e", type=0x88cc) /
    Raw(b"\x02\x07\x04" + bytes(rng.randrange(256) for _ in range(6)) + b"\x04\x03\x05ab\x06\x02\x00\x78\x00\x00"))
add("ptp", Ether(src=mac(), dst="01:1b:19:00:00:00", type=0x88f7) / Raw(b"\x00\x02\x00\x2c" + b"\x00" * 40))
add("ethertype", eth(type=0x88b5) / payload(40))
add("llc", Dot3(src=mac(), dst=mac()) / LLC(dsap=0xaa, ssap=0xaa, ctrl=3) / SNAP(OUI=0, code=0x0800) / IP(src=v4(), dst=v4()) / ICMP())

packets = []
with open(sys.argv[2], "w") as families:
    for family, packet in cases:
        packets.append(packet)
        families.write(family + "\n")
wrpcap(sys.argv[1], packets)
