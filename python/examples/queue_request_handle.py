"""The message-queue demo from the seeds (000): only the import line changed."""
from ringshm import Queue, Process
from time import sleep
from random import randint


def request(q):
    for i in range(10):
        x = randint(1, 100)
        y = randint(1, 100)
        q.put((x, y))
        print("=============")
        print("通道消息个数为-->", q.qsize())


def handle(q):
    while not q.empty():
        data = q.get()
        print("x + y = ", data[0] + data[1])
        sleep(2)


if __name__ == '__main__':
    q = Queue(5)
    p1 = Process(target=request, args=(q,))
    p2 = Process(target=handle, args=(q,))
    p1.start()
    p2.start()
    p1.join()
    p2.join()
