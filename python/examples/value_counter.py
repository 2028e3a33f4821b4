"""The shared-counter example from the seeds (002): only the import changed."""
import ringshm as multiprocessing


def func(value):
    value.value += 1


if __name__ == '__main__':
    value = multiprocessing.Value('i', 0)
    processes = [multiprocessing.Process(target=func, args=(value,)) for _ in range(10)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    print(value.value)  # 10
