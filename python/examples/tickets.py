"""The ticket-buying example from the seeds (003): only the import line changed."""
import json
import time
import random
from ringshm import Process, Lock


def check_ticket(i):
    with open('db') as f:
        ticket_count = json.load(f)
    print('person%s查询当前余票 :' % i, ticket_count['ticket'])


def buy_ticket(i, lock):
    check_ticket(i)
    lock.acquire()
    with open('db') as f:
        ticket_count = json.load(f)
    time.sleep(random.random())
    if ticket_count['ticket'] > 0:
        print('person%s购票成功' % i)
        ticket_count['ticket'] -= 1
    else:
        print('余票不足,person%s购票失败' % i)
    time.sleep(random.random())
    with open('db', 'w') as f:
        json.dump(ticket_count, f)
    lock.release()


if __name__ == '__main__':
    with open('db', 'w') as f:  # the tutorial's db file: {"ticket":2}
        json.dump({"ticket": 2}, f)
    lock = Lock()
    for i in range(5):
        Process(target=buy_ticket, args=[i, lock]).start()
