#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/.

Valid WAL segments (real framing and masked CRC32C), COMMIT/END payloads,
txids, and hand-encoded txcoord.v1 protos arranged the way each target reads
its input (see fuzz/*_target.cc). Run it again after changing an input layout.
"""
import os
import struct

os.chdir(os.path.dirname(os.path.abspath(__file__)))
def crc32c(data):
    poly=0x82F63B78; crc=0xFFFFFFFF
    for b in data:
        crc^=b
        for _ in range(8):
            crc=(crc>>1)^poly if crc&1 else crc>>1
    return crc^0xFFFFFFFF
def mask(c): return ((((c>>15)|(c<<17))&0xFFFFFFFF)+0xa282ead8)&0xFFFFFFFF
def header(seq, flags=1, cp=0):
    h=struct.pack('<IHHQQ',0x4c415754,1,flags,seq,cp)
    return h+struct.pack('<I',mask(crc32c(h)))
def record(t,p):
    body=struct.pack('<I',len(p))+bytes([t])+p
    return struct.pack('<I',mask(crc32c(body)))+body
def w(d, name, data):
    os.makedirs(os.path.join('corpus', d), exist_ok=True)
    open(os.path.join('corpus', d, name), 'wb').write(data)
# wal_reader raw (first byte even): segments=1, first seq=1, size bytes, tmp flag, data
seg=header(1)+record(1,b'c.1.1')+record(2,b'c.1.1')+record(1,b'c.1.2')
w('wal_reader','raw-one-segment',bytes([0,0,0,0,0,0])+seg)
seg2=header(2,0)+record(1,b'x'*40)
w('wal_reader','raw-two-segments',bytes([0,1,0,0,len(seg)>>2 if False else 0,0,0,0])+seg+seg2)
w('wal_reader','raw-torn-tail',bytes([0,0,0,0,0,0])+seg[:-3])
# structured (first byte odd): segs, damage, where hi, where lo, damaged seg, nrec, (type,len,payload)...
def structured(segs,damage,where,dseg,recs,extra=b''):
    out=bytes([1,segs,damage,where>>8,where&255,dseg])
    for s in recs:
        out+=bytes([len(s)])
        for t,p in s: out+=bytes([t,len(p)])+p
    return out+extra
recs=[[(1,b'c.1.1 commit'),(2,b'c.1.1'),(1,b'c.1.2 commit')]]
w('wal_reader','structured-clean',structured(0,0,0,0,recs))
w('wal_reader','structured-cut',structured(0,1,60,0,recs))
w('wal_reader','structured-flip',structured(0,2,45,0,recs,b'\x10'))
w('wal_reader','structured-zero-tail',structured(0,3,50,0,recs))
w('wal_reader','structured-two-segments-flip-first',structured(1,2,40,0,recs+[[(5,b'second')]],b'\x01'))
# records
def varint(n):
    out=b''
    while n>=0x80: out+=bytes([n&0x7f|0x80]); n>>=7
    return out+bytes([n])
def s(b): return varint(len(b))+b
w('records','commit-two-branches',s(b'c.1.7')+varint(2)+s(b'p0')+s(b'h:1')+s(b'p1')+s(b'h:2'))
w('records','end',s(b'c.1.7'))
w('records','txid','abc.10.99'.encode())
w('records','txid-noncanonical','c.01.+5'.encode())
# protos
def field(n,wt,payload):
    key=varint(n<<3|wt)
    return key+(varint(payload) if wt==0 else s(payload))
begin=field(1,0,5000)
def enlist(p,prepared=False):
    m=field(1,2,b'x')+field(2,2,p)+field(3,2,b'h:1')
    return m+(field(4,0,1) if prepared else b'')
commit=field(1,2,b'x')
query=lambda p: field(1,2,b'x')+field(2,2,p)
def op(kind,msg,*picks): return bytes([kind,len(msg)])+msg+bytes(picks)
seq=(op(0,begin)+op(1,enlist(b'a'),200,0)+op(1,enlist(b'b'),200,0)+op(2,commit,200)
     +bytes([6,0,1, 6,0,1, 6,0,1, 6,0,1, 6,0,1])+op(5,query(b'a'),200,0)+bytes([7,100,8]))
w('coordinator_requests','two-branch-commit',seq)
seq=(op(0,begin)+op(1,enlist(b'a',True),200,0)+op(1,enlist(b'b'),200,0)+op(2,commit,200)
     +bytes([6,0,2])+op(5,query(b'a'),200,0)+op(3,field(1,2,b'x'),200)+bytes([7,200,8]))
w('coordinator_requests','early-prepare-then-no',seq)
seq=op(0,begin)+op(1,enlist(b'a'),200,0)+op(2,commit,200)+bytes([6,0,0,7,50,8,6,0,1])
w('coordinator_requests','one-phase-retry',seq)
# 0xff then an operator op: 0 mark-done (txid pick, participant pick, note
# length), 1 retry (txid pick), 2 force-abort, 3 checkpoint, 4 restart, 5 list.
def special(kind,*picks): return bytes([0xff,kind])+bytes(picks)
two=op(0,begin)+op(1,enlist(b'a'),200,0)+op(1,enlist(b'b'),200,0)+op(2,commit,200)
seq=two+bytes([6,0,1, 6,0,1, 6,0,1])+special(4)+bytes([6,0,1])+special(5)+bytes([6,0,1])
w('coordinator_requests','commit-restart-phase-two',seq)
seq=(two+bytes([6,0,1, 6,0,1, 6,0,1, 6,0,0])+special(1,0)+special(0,0,1,0)
     +bytes([6,0,1, 6,0,1, 6,0,1, 6,0,1, 9,0,1])+special(3)+special(4)+bytes([6,0,1, 6,0,1]))
w('coordinator_requests','retry-mark-done-checkpoint-restart',seq)
seq=(op(0,begin)+op(1,enlist(b'a'),200,0)+op(2,commit,200)+bytes([6,0,1])+special(3)
     +special(4)+bytes([6,0,0, 7,10,8, 6,0,1])+special(2,0))
w('coordinator_requests','one-phase-checkpoint-restart',seq)
w('coordinator_requests','foreign-txid',op(5,field(1,2,b'other.1.1')+field(2,2,b'a'),0,0)+op(2,field(1,2,b'c.9.1'),0))
# agent: Execute(txid fixed from list) with a template statement
def stmt(sql,*ints):
    m=field(1,2,sql)
    for i in ints: m+=field(2,2,field(2,0,i))
    return m
def execute(stmts,prepare=False):
    m=field(1,2,b'c.1.1')
    for st in stmts: m+=field(2,2,st)
    if prepare: m+=field(3,0,1)
    return m
def ex(msg,fix):
    n=(len(msg)+3)//4
    msg=msg+b'\x00'*(n*4-len(msg))
    return bytes([0,n])+msg+bytes(fix)
upd=stmt(b'UPDATE accounts SET balance = balance + ?1 WHERE id = ?2',5,1)
seq=ex(execute([upd]),[1,0,0])+bytes([0])+bytes([1,1,0,1,0])+bytes([2,1,0,1,0])
w('agent_requests','execute-prepare-commit',seq)
seq=ex(execute([upd],True),[1,1,0])+bytes([0,0])+bytes([3,1,0,1,1])
w('agent_requests','early-prepare-abort',seq)
seq=ex(execute([stmt(b'INSERT INTO moves(id, account) VALUES (?1, ?2)',7,2)]),[1,2,0])+bytes([0])+bytes([4,1,0,1,2])
w('agent_requests','insert-fk-one-phase',seq)
seq=ex(execute([stmt(b'SELECT * FROM sqlite_master')]),[0,0])
w('agent_requests','raw-sql',seq)
# frames: a stream of request frames (length, version, method, timeout ms, proto), or an answer
def frame(body): return struct.pack('<I',len(body))+body
def request(method,ms,msg): return frame(bytes([1,method])+struct.pack('<I',ms)+msg)
w('frames','two-executes',request(1,2500,execute([upd]))+request(1,0,execute([upd],True)))
w('frames','commit-then-torn',request(2,30000,field(1,2,b'c.1.7'))+request(2,10,b'')[:7])
w('frames','over-the-limit',struct.pack('<I',1<<20)+b'x'*16)
w('frames','error-answer',bytes([10])+b'lock wait timed out')
