from healthswarm.cli.main import run

run()
