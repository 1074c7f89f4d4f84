"""Node-to-node session replication, the way Tomcat's BackupManager does it: each node owns its users'
sessions in memory and copies every change to its buddy, the next node in a ring (app1 -> app2 -> app3 ->
app1), so one copy of every session lives on a second node.

    ring.py     who is my buddy, and whose copies do I keep (my ward)
    channel.py  the signed HTTP channel between nodes, and the /internal/replication endpoints
    link.py     the copy stream to the buddy: synchronous or not, down/up, state transfer on its return

The strategy that uses them is strategies/replicated.py.
"""
