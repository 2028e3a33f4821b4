"""pipe.py from the seeds (000): only the import line changed."""
from ringshm import Process, Pipe

fd1, fd2 = Pipe()


def app1(fd1):
    print("启动app1,请登录")
    print("请求app2授权")
    fd1.send("app1 可以用你的账号登录吗?")
    data = fd1.recv()
    if data:
        print("登录成功:", data)


def app2(fd2):
    request = fd2.recv()
    print(request)
    fd2.send(('Joy', '123'))


if __name__ == '__main__':
    p1 = Process(target=app1, args=(fd1,))
    p2 = Process(target=app2, args=(fd2,))
    p1.start()
    p2.start()
    p1.join()
    p2.join()
