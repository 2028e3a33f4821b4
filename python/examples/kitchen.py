"""The JoinableQueue kitchen from the seeds (003): only the import line changed."""
from ringshm import Process, JoinableQueue
import time, random, os


def consumer(q):
    while True:
        food = q.get()
        time.sleep(random.randint(1, 3))
        print('\033[32m%s 吃 %s\033[0m' % (os.getpid(), food))
        q.task_done()


def producer(name, q):
    for i in range(1, 6):
        time.sleep(random.randint(1, 3))
        res = '%s%s' % (name, i)
        q.put(res)
        print('\033[34m%s 生产了 %s\033[0m' % (os.getpid(), res))
    q.join()


if __name__ == '__main__':
    q = JoinableQueue()
    p1 = Process(target=producer, args=('蒸水蛋', q))
    p2 = Process(target=producer, args=('清蒸鱼', q))
    p3 = Process(target=producer, args=('酱油鸡', q))
    c1 = Process(target=consumer, args=(q,))
    c2 = Process(target=consumer, args=(q,))
    c1.daemon = True
    c2.daemon = True
    p_l = [p1, p2, p3, c1, c2]
    for p in p_l:
        p.start()
    p1.join()
    p2.join()
    p3.join()
    print('主进程结束')
