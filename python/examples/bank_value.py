"""value.py from the seeds (000): only the import line changed."""
from ringshm import Process, Value
import time
import random

money = Value('i', 5000)


def man(money):
    for i in range(30):
        time.sleep(0.2)
        money.value += random.randint(1, 1000)
        print("此时余额为:", money.value)


def girl(money):
    for i in range(30):
        time.sleep(0.15)
        money.value -= random.randint(100, 800)
        print("此时余额为:", money.value)


if __name__ == '__main__':
    p1 = Process(target=man, args=(money,))
    p2 = Process(target=girl, args=(money,))
    p1.start()
    p2.start()
    p1.join()
    p2.join()
    print("一个月余额:", money.value)
