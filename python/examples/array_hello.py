"""array.py from the seeds (000): only the import line changed."""
from ringshm import Process, Array
from time import sleep

shm = Array('c', b'hello')


def fun(shm):
    for i in shm:
        print(i)
    shm[0] = b'H'


if __name__ == '__main__':
    p = Process(target=fun, args=(shm,))
    p.start()
    p.join()
    for i in shm:
        print(i)
    print(shm.value)
