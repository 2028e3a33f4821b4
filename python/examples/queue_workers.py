"""The queue-and-workers example from the seeds (002): only the import changed."""
import ringshm as multiprocessing


def worker(q):
    while True:
        item = q.get()
        if item is None:
            break
        print(item)


if __name__ == '__main__':
    q = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=worker, args=(q,)) for _ in range(4)]
    for process in processes:
        process.start()
    for i in range(10):
        q.put(i)
    for _ in range(len(processes)):
        q.put(None)
    for process in processes:
        process.join()
