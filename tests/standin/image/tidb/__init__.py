"""TiDB role of the stand-in cluster (a test double for pingcap/tidb).

It speaks the MySQL protocol on ``-P`` and TiDB's status API on ``--status``,
keeps user rows and index entries in the TiKV role and schema/jobs/tasks in
PD's etcd, and runs TiDB's DDL / IMPORT INTO / DXF state machines so faults act
on it through the same physics as on the real server.
"""
