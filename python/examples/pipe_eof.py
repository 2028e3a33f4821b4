"""The Pipe end-of-file example from the seeds (003): only the import changed
(and, as the tutorial says, reading after EOFError is an error: it stops)."""
from ringshm import Process, Pipe


def f(parent_conn, child_conn):
    parent_conn.close()
    while True:
        try:
            print(child_conn.recv())
        except EOFError:
            child_conn.close()
            break


if __name__ == '__main__':
    parent_conn, child_conn = Pipe()
    p = Process(target=f, args=(parent_conn, child_conn,))
    p.start()
    child_conn.close()
    parent_conn.send('hello')
    parent_conn.close()
    p.join()
