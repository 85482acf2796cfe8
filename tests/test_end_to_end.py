"""The engine issue's example, as a user runs it, on a slice of real MNIST."""

import numpy as np

import descend as dc
from descend import nn, optim


def test_the_mnist_example_trains_saves_and_loads(tmp_path):
    x1, x2 = dc.tensor(2.0, requires_grad=True), dc.tensor(5.0, requires_grad=True)
    f = dc.log(x1) + x1 * x2 - dc.sin(x2)
    f.backward()
    assert round(float(x1.grad), 3) == 5.5 and round(float(x2.grad), 3) == 1.716

    train, test = dc.data.load_mnist()
    assert (len(train), len(test)) == (60_000, 10_000)
    train, test = train[:10000], test[:2000]
    model = nn.MLP([784, 512, 256, 10], activation="relu", dropout=0.2)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=False, weight_decay=1e-4, l1=0.0,
                    schedule=optim.InverseTimeDecay(decay=1e-4))
    history = dc.fit(model, nn.CrossEntropyLoss(), opt, train, epochs=2, batch_size=128, validation=test,
                     progress=False)
    assert history["val_accuracy"][-1] > 0.88
    dc.save(model, tmp_path / "mnist-mlp.dsc")
    model2 = dc.load(tmp_path / "mnist-mlp.dsc")
    np.testing.assert_array_equal(dc.predict(model2, test.x), dc.predict(model, test.x))


def test_the_anomaly_example_of_the_autoencoder_issue():
    train, test = dc.data.load_mnist()
    normal_train = train[train.y != 9][:3000]
    ae = nn.Autoencoder([784, 256, 64], activation="relu", output="sigmoid")
    dc.fit(ae, nn.MSELoss(), optim.Adam(ae.parameters(), lr=1e-3), normal_train, epochs=2, batch_size=128,
           progress=False)
    x = test.x[:500]
    scores = dc.anomaly.reconstruction_error(ae, x)
    assert scores.shape == (500,) and (scores > 0).all()
    detector = dc.anomaly.AnomalyDetector(ae, contamination=0.01).fit(normal_train)
    flags = detector.predict(x)
    assert set(np.unique(flags)) <= {-1, 1} and 0 < (flags == -1).mean() < 0.2
